"""The plugin's parts as plain dataclasses with ElizaOS's field names and call signatures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .video_service import ImagineVideoService

__all__ = ["Action", "Callback", "Content", "Evaluator", "Handler", "Parameter", "Plugin", "Provider", "Validator"]

Content = dict[str, Any]
Callback = Callable[[Content], Awaitable[Any]]
Validator = Callable[[Any, Any, Any], Awaitable[bool]]
Handler = Callable[..., Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Action:
    """ElizaOS ``Action``: the runtime calls ``validate`` to offer it, then ``handler`` to run it."""

    name: str
    description: str
    similes: list[str]
    examples: list[list[dict[str, Any]]]
    validate: Validator
    handler: Handler
    parameters: tuple[Parameter, ...] = ()


@dataclass(frozen=True)
class Parameter:
    """ElizaOS ``ActionParameter``: what the model may fill in when it picks the action."""

    name: str
    description: str
    type: str  # JSON schema type: string, number, boolean
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None

    def to_json(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": self.type}
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        return {"name": self.name, "description": self.description, "required": self.required, "schema": schema}


@dataclass(frozen=True)
class Provider:
    """ElizaOS ``Provider``: ``get`` returns ``{text, values, data}`` for the agent's state."""

    name: str
    description: str
    get: Callable[[Any, Any, Any], Awaitable[dict[str, Any]]]
    dynamic: bool = False


@dataclass(frozen=True)
class Evaluator:
    """ElizaOS ``Evaluator``: runs after a response; ``validate`` decides whether ``handler`` runs."""

    name: str
    description: str
    similes: list[str]
    examples: list[dict[str, Any]]
    validate: Validator
    handler: Handler
    always_run: bool = True


@dataclass(frozen=True)
class Plugin:
    """ElizaOS ``Plugin``: what a host registers (init first, then actions, providers, evaluators, services)."""

    name: str
    description: str
    init: Callable[[Mapping[str, Any], Any], Awaitable[None]]
    config: dict[str, str | None]
    services: list[type[ImagineVideoService]]
    actions: list[Action]
    providers: list[Provider]
    evaluators: list[Evaluator]
    agent_config: dict[str, Any] | None = None
    """Registry metadata as ElizaOS plugins publish it (``agentConfig`` in package.json)."""
