"""A tiny ElizaOS-like host: the test double of the runtime that drives the plugin, not of our code.

It does what an ElizaOS runtime does with a plugin: ``init(config, runtime)``, registers actions,
providers and evaluators, starts services with ``start(runtime)``; then for a message it asks each
action's ``validate`` and runs the chosen ``handler`` with a callback, composes state from providers,
and runs evaluators.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FakeRuntime", "Turn"]


@dataclass
class Turn:
    """What one message produced: the chosen action, every callback reply, and the action result."""

    action: str | None
    replies: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None

    @property
    def texts(self) -> list[str]:
        return [reply["text"] for reply in self.replies]


class FakeRuntime:
    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        self.settings = dict(settings or {})
        self.logger = logging.getLogger("fake-eliza")
        self.actions: list[Any] = []
        self.providers: list[Any] = []
        self.evaluators: list[Any] = []
        self.services: dict[str, Any] = {}
        self.cache: dict[str, Any] = {}

    # --------------------------------------------------------------------------- what plugins call
    def get_setting(self, key: str) -> Any:
        return self.settings.get(key)

    def get_service(self, service_type: str) -> Any:
        return self.services.get(service_type)

    async def set_cache(self, key: str, value: Any) -> bool:
        self.cache[key] = value
        return True

    # --------------------------------------------------------------------------- what the host does
    async def register_plugin(self, plugin: Any) -> None:
        await plugin.init(plugin.config, self)
        self.actions += plugin.actions
        self.providers += plugin.providers
        self.evaluators += plugin.evaluators
        for service_class in plugin.services:
            self.services[service_class.service_type] = await service_class.start(self)

    async def stop(self) -> None:
        for service in self.services.values():
            await service.stop()
        self.services.clear()

    async def valid_actions(self, text: str) -> list[str]:
        message = {"content": {"text": text}}
        return [a.name for a in self.actions if await a.validate(self, message, None)]

    async def handle(self, text: str, *, action: str | None = None, options: dict[str, Any] | None = None) -> Turn:
        """One message: the named action (else the first that validates), then the evaluators."""
        message = {"content": {"text": text}}
        state = await self.compose_state(message)
        if action is None:
            valid = await self.valid_actions(text)
            action = valid[0] if valid else None
        turn = Turn(action)
        chosen = next((a for a in self.actions if a.name == action), None)
        if chosen is not None:

            async def callback(content: dict[str, Any]) -> list[Any]:
                turn.replies.append(content)
                return []

            turn.result = await chosen.handler(self, message, state, options or {}, callback)
        for evaluator in self.evaluators:
            if await evaluator.validate(self, message, state):
                await evaluator.handler(self, message, state, {}, None)
        return turn

    async def compose_state(self, message: Any) -> dict[str, Any]:
        results = {p.name: await p.get(self, message, None) for p in self.providers}
        return {
            "text": "\n".join(r["text"] for r in results.values() if r["text"]),
            "values": {k: v for r in results.values() for k, v in r["values"].items()},
            "data": {"providers": {name: r["data"] for name, r in results.items()}},
        }
