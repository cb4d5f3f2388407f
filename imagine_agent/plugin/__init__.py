"""An ElizaOS-shaped plugin: buy videos from chat, with the budget and pending jobs in the agent's context.

The parts are plain dataclasses with ElizaOS's field names and call signatures, so any host that
calls ``action.validate(runtime, message, state)`` → ``action.handler(runtime, message, state, options,
callback)`` and ``provider.get(runtime, message, state)`` can drive them; no import of ``elizaos``
happens unless you ask for it. ``elizaos_plugin()`` adapts them to the real ``elizaos`` Python types
(verified against elizaos 2.0.0a5), and ``register(runtime)`` picks the right form for a runtime.

    from elizaos import AgentRuntime
    from imagine_agent.plugin import elizaos_plugin
    runtime = AgentRuntime(plugins=[elizaos_plugin()], settings={"IMAGINE_DAILY_CAP": "5"})

Every action only parses the message, calls ``ImagineService`` (which alone checks, reserves, signs and
journals payments) and narrates the result. Caps come from the operator's settings, never from a
message or an action option.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .actions import GENERATE_VIDEO, QUOTE_VIDEO, VIDEO_STATUS
from .elizaos import elizaos_plugin, register
from .providers import IMAGINE_BUDGET, IMAGINE_PENDING_VIDEOS, RECORD_DELIVERY
from .shapes import Action, Evaluator, Parameter, Plugin, Provider
from .video_service import CONFIG_KEYS, ImagineVideoService, settings_from_runtime

__all__ = [
    "AGENT_CONFIG",
    "CONFIG_KEYS",
    "Action",
    "Evaluator",
    "ImagineVideoService",
    "Parameter",
    "Plugin",
    "Provider",
    "elizaos_plugin",
    "imagine_plugin",
    "register",
    "settings_from_runtime",
]


async def _init(config: Mapping[str, Any], runtime: Any) -> None:
    """Fail early on settings that cannot work; say loudly when it is the no-money sandbox."""
    settings = settings_from_runtime(runtime, config)
    logger = getattr(runtime, "logger", None)
    if settings.base_url is None and logger is not None:
        logger.warning("imagine plugin: no IMAGINE_BASE_URL, using the embedded sandbox; no real money moves")


_DESCRIPTIONS = {
    "IMAGINE_BASE_URL": "Imagine API base URL (https://eliza.getimagine.club); unset = the embedded no-money sandbox",
    "IMAGINE_PRIVATE_KEY": "0x hex key of the paying wallet (USDC on Base)",
    "IMAGINE_KEYSTORE": "eth-account keystore file of the paying wallet, instead of a raw key",
    "IMAGINE_KEYSTORE_PASSWORD": "password of the keystore",
    "IMAGINE_DATA_DIR": "where the ledger and the videos are kept",
    "IMAGINE_LEDGER_URL": "postgresql://… to share one budget between agents (default: SQLite in the data dir)",
    "IMAGINE_MAX_PER_CALL": "most USDC one video may cost (default 5)",
    "IMAGINE_DAILY_CAP": "most USDC spent per day (default 20)",
    "IMAGINE_TOTAL_CAP": "most USDC spent in total (default 100)",
    "IMAGINE_SESSION_CAP": "most USDC spent while the agent runs",
    "IMAGINE_RATE_PER_MINUTE": "most payments per minute (default 10)",
    "IMAGINE_APPROVAL_THRESHOLD": "payments over this many USDC need IMAGINE_APPROVER's yes (default 2)",
    "IMAGINE_AUTO_CLANK": "coins for videos: never (default), ask (IMAGINE_APPROVER decides), agent, always",
    "IMAGINE_SANDBOX_SPEED": "time scale of the embedded sandbox's jobs",
}
_SENSITIVE = frozenset({"IMAGINE_PRIVATE_KEY", "IMAGINE_KEYSTORE_PASSWORD", "IMAGINE_LEDGER_URL"})
AGENT_CONFIG: dict[str, Any] = {
    "pluginType": "elizaos:plugin:1.0.0",
    "pluginParameters": {
        key: {"type": "string", "required": False, "sensitive": key in _SENSITIVE, "description": _DESCRIPTIONS[key]}
        for key in CONFIG_KEYS
    },
    "actions": {a: {"parameters": None} for a in ("GENERATE_VIDEO", "QUOTE_VIDEO", "VIDEO_STATUS")},
}
"""Registry metadata, as ElizaOS plugins publish it in package.json's ``agentConfig``."""

imagine_plugin = Plugin(
    name="imagine",
    description="Buy AI videos from the Imagine API with x402 (USDC on Base) under an operator budget.",
    init=_init,
    config={key: None for key in CONFIG_KEYS},
    services=[ImagineVideoService],
    actions=[GENERATE_VIDEO, QUOTE_VIDEO, VIDEO_STATUS],
    providers=[IMAGINE_BUDGET, IMAGINE_PENDING_VIDEOS],
    evaluators=[RECORD_DELIVERY],
    agent_config=AGENT_CONFIG,
)
for _action in imagine_plugin.actions:
    AGENT_CONFIG["actions"][_action.name]["parameters"] = [p.to_json() for p in _action.parameters]
