"""The plugin's settings (from the runtime, the plugin config, then ``IMAGINE_*``) and its long-lived service."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar

from ..config import Settings
from ..errors import ConfigurationError
from ..service import ImagineService

__all__ = ["CONFIG_KEYS", "ImagineVideoService", "settings_from_runtime"]

# Plugin setting -> Settings field. Read from the runtime (character settings/secrets), then the plugin
# config, then the IMAGINE_* environment. Only the operator sets these.
CONFIG_KEYS: dict[str, str] = {
    "IMAGINE_BASE_URL": "base_url",
    "IMAGINE_PRIVATE_KEY": "private_key",
    "IMAGINE_KEYSTORE": "keystore",
    "IMAGINE_KEYSTORE_PASSWORD": "keystore_password",
    "IMAGINE_DATA_DIR": "data_dir",
    "IMAGINE_LEDGER_URL": "ledger_url",
    "IMAGINE_MAX_PER_CALL": "max_per_call",
    "IMAGINE_DAILY_CAP": "daily_cap",
    "IMAGINE_TOTAL_CAP": "total_cap",
    "IMAGINE_SESSION_CAP": "session_cap",
    "IMAGINE_RATE_PER_MINUTE": "rate_per_minute",
    "IMAGINE_APPROVAL_THRESHOLD": "approval_threshold",
    "IMAGINE_AUTO_CLANK": "auto_clank",
    "IMAGINE_SANDBOX_SPEED": "sandbox_speed",
}


def _setting(runtime: Any, key: str) -> Any:
    get = getattr(runtime, "get_setting", None)
    return get(key) if callable(get) else None


def settings_from_runtime(runtime: Any, config: Mapping[str, Any] | None = None) -> Settings:
    """Operator settings for the plugin: runtime settings, then plugin config, then ``IMAGINE_*`` env."""
    values: dict[str, Any] = {}
    for key, name in CONFIG_KEYS.items():
        value = _setting(runtime, key)
        if value is None and config is not None:
            value = config.get(key)
        if value is not None and value != "":
            values[name] = value
    try:
        return Settings(**values)
    except ValueError as exc:
        # Name the setting, never echo its value: it may be a key.
        errors: list[Any] = exc.errors() if hasattr(exc, "errors") else []
        names = sorted({_key_for(str(e["loc"][0])) for e in errors if e.get("loc")}) or ["settings"]
        raise ConfigurationError(f"invalid plugin setting(s): {', '.join(names)}; check their format") from None


def _key_for(field_name: str) -> str:
    return next((k for k, v in CONFIG_KEYS.items() if v == field_name), field_name)


class _PluginApprover:
    """The operator's ``IMAGINE_APPROVER`` callback as the wallet's approver, named so each answer is recorded."""

    surface = "plugin"

    def __init__(self, callback: Any) -> None:
        self.callback = callback

    def __call__(self, request: Any) -> bool:
        return bool(self.callback(request))


class ImagineVideoService:
    """The long-lived ``ImagineService`` of one agent (ElizaOS ``Service``: ``start(runtime)``, ``stop()``).

    It also keeps the videos delivered in chat, which the evaluator records and the pending-videos
    provider shows.
    """

    service_type: ClassVar[str] = "imagine_video"
    capability_description: ClassVar[str] = (
        "Buys AI videos from the Imagine API: quotes, pays per request in USDC on Base (x402) within "
        "operator caps, waits for the render and delivers the file."
    )

    def __init__(self, runtime: Any = None, service: ImagineService | None = None) -> None:
        self._runtime = runtime
        self._config: object | None = None
        self._service = service
        self.unrecorded: list[dict[str, Any]] = []
        self.delivered: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, runtime: Any) -> ImagineVideoService:
        """Open the service. Payments over the approval threshold go to the operator's ``IMAGINE_APPROVER``
        runtime setting (a callable given the ``ApprovalRequest``, run off the event loop); without one
        they are declined and nothing is signed."""
        from ..logs import quiet_library_logs

        quiet_library_logs()  # no line per poll in the agent's log
        settings = settings_from_runtime(runtime)
        approver = _setting(runtime, "IMAGINE_APPROVER")
        service = await asyncio.to_thread(
            ImagineService.create, settings, approver=_PluginApprover(approver) if callable(approver) else None
        )
        service.queue_approvals("plugin")  # no callback: the operator decides in the approvals queue
        service.output_dir = settings.data_dir / "videos"
        return cls(runtime, service)

    @property
    def approver(self) -> Any:
        """The operator's ``IMAGINE_APPROVER`` callback: asked for payments over the threshold and coins under 'ask'."""
        return self.service.approver

    async def stop(self) -> None:
        if self._service is not None:
            service, self._service = self._service, None
            await asyncio.to_thread(service.close)

    @property
    def service(self) -> ImagineService:
        if self._service is None:
            raise ConfigurationError("the Imagine video service is stopped")
        return self._service

    def deliver(self, record: dict[str, Any]) -> None:
        """Note a video handed to the user; the evaluator records it."""
        if not any(r["taskId"] == record["taskId"] for r in [*self.unrecorded, *self.delivered]):
            self.unrecorded.append(record)


def _video_service(runtime: Any) -> ImagineVideoService | None:
    get = getattr(runtime, "get_service", None)
    found = get(ImagineVideoService.service_type) if callable(get) else None
    return found if isinstance(found, ImagineVideoService) else None


def _require_service(runtime: Any) -> ImagineVideoService:
    found = _video_service(runtime)
    if found is None:
        raise ConfigurationError("the imagine plugin's service is not running: register the plugin first")
    return found
