"""The imagine plugin driven the way an ElizaOS runtime drives it: validate → handler(callback) → evaluators,
with the providers' text in the agent's state.

    python examples/eliza_plugin.py "make a 2 second video of a koi pond in the rain"
    python examples/eliza_plugin.py --runtime elizaos     # the real elizaos AgentRuntime (pip install elizaos)

``--runtime minimal`` (the default without elizaos) uses the few lines of host below, to show exactly
what a runtime calls; ``elizaos`` registers ``elizaos_plugin()`` into ``elizaos.AgentRuntime``. Settings
come from the runtime (character settings), falling back to ``IMAGINE_*``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import uuid
from typing import Any

from imagine_agent.plugin import imagine_plugin

SETTINGS = {key: os.environ[key] for key in ("IMAGINE_DATA_DIR", "IMAGINE_SANDBOX_SPEED") if key in os.environ}


class MinimalRuntime:
    """The host side of the contract: settings, services, and dispatching a message to an action."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.services: dict[str, Any] = {}

    def get_setting(self, key: str) -> Any:
        return self.settings.get(key)

    def get_service(self, service_type: str) -> Any:
        return self.services.get(service_type)


async def with_minimal_runtime(text: str) -> None:
    runtime = MinimalRuntime(SETTINGS)
    await imagine_plugin.init(imagine_plugin.config, runtime)
    for service_class in imagine_plugin.services:
        runtime.services[service_class.service_type] = await service_class.start(runtime)
    try:
        message = {"content": {"text": text}}
        for provider in imagine_plugin.providers:
            print(f"[{provider.name}] {(await provider.get(runtime, message, None))['text']}")
        valid = [a for a in imagine_plugin.actions if await a.validate(runtime, message, None)]
        action = valid[0] if valid else None
        print(f"[action] {action.name if action else 'none'}")

        async def callback(content: dict[str, Any]) -> list[Any]:
            print(f"[agent] {content['text']}")
            return []

        if action is not None:
            result = await action.handler(runtime, message, None, {}, callback)
            print(f"[result] success={result['success']}")
        for evaluator in imagine_plugin.evaluators:
            if await evaluator.validate(runtime, message, None):
                print(f"[{evaluator.name}] {(await evaluator.handler(runtime, message, None, {}, None))['text']}")
    finally:
        for service in runtime.services.values():
            await service.stop()


async def with_elizaos(text: str) -> None:
    from elizaos import AgentRuntime, Character
    from elizaos.types import Content, Memory

    from imagine_agent.plugin import elizaos_plugin

    runtime = AgentRuntime(
        character=Character(name="Reel", bio="Makes short videos on request."),
        plugins=[elizaos_plugin()],
        settings=dict(SETTINGS),
    )
    await runtime.initialize()
    try:
        room = str(uuid.uuid4())
        message = Memory(id=str(uuid.uuid4()), room_id=room, content=Content(text=text))
        state = await runtime.compose_state(message)
        chosen = [
            a.name
            for a in runtime.actions
            if a.name in {x.name for x in imagine_plugin.actions} and await a.validate(runtime, message, state)
        ]
        print(f"[action] {chosen[0] if chosen else 'none'}")

        async def callback(content: Any) -> list[Any]:
            print(f"[agent] {content.text}")
            return []

        response = Memory(room_id=room, content=Content(text="", actions=chosen[:1]))
        await runtime.process_actions(message, [response], state, callback)
        for result in runtime.get_action_results(message.id):
            print(f"[result] success={result.success}")
        await runtime.evaluate(message, state, did_respond=True, callback=callback, responses=[response])
        state = await runtime.compose_state(message, skip_cache=True)
        print("[IMAGINE_BUDGET] " + next(line for line in state.text.splitlines() if "Imagine video budget" in line))
    finally:
        await runtime.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Drive the imagine plugin like an ElizaOS runtime.")
    parser.add_argument("message", nargs="?", default="Make a 2 second video of a koi pond in the rain")
    parser.add_argument("--runtime", choices=["auto", "minimal", "elizaos"], default="auto")
    args = parser.parse_args(argv)
    use_elizaos = args.runtime == "elizaos" or (args.runtime == "auto" and importlib.util.find_spec("elizaos"))
    asyncio.run(with_elizaos(args.message) if use_elizaos else with_minimal_runtime(args.message))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
