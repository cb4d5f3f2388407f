"""The adapter to the real ``elizaos`` Python runtime (verified with elizaos 2.0.0a5), and ``register``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from .shapes import Callback, Content, Handler, Plugin
from .video_service import ImagineVideoService

__all__ = ["elizaos_plugin", "register"]


def _default() -> Plugin:
    from . import imagine_plugin

    return imagine_plugin


def elizaos_plugin(plugin: Plugin | None = None) -> Any:
    """The plugin as an ``elizaos.types.Plugin`` (``pip install elizaos``; verified with 2.0.0a5).

    Handlers get ElizaOS's protobuf ``Memory``/``State`` as they are; replies go to the callback as
    ``Content``; results come back as ``ActionResult``/``ProviderResult``.
    """
    from elizaos.types import Action as ElizaAction
    from elizaos.types import ActionExample, ActionParameter, ActionResult, EvaluationExample, ProviderResult
    from elizaos.types import Content as ElizaContent
    from elizaos.types import Evaluator as ElizaEvaluator
    from elizaos.types import Plugin as ElizaPlugin
    from elizaos.types import Provider as ElizaProvider
    from elizaos.types import Service as ElizaService
    from google.protobuf.json_format import ParseDict

    def to_content(content: Content) -> Any:
        return ElizaContent(**{k: v for k, v in content.items() if v is not None})

    def to_callback(callback: Any) -> Callback | None:
        if callback is None:
            return None

        async def send(content: Content) -> Any:
            return await callback(to_content(content))

        return send

    def to_result(result: dict[str, Any]) -> Any:
        return ActionResult(**{k: _json_safe(v) for k, v in result.items() if v is not None})

    def handler_of(handler: Handler) -> Any:
        async def run(
            runtime: Any,
            message: Any,
            state: Any = None,
            options: Any = None,
            callback: Any = None,
            responses: Any = None,
        ) -> Any:
            return to_result(await handler(runtime, message, state, options, to_callback(callback), responses))

        return run

    def provider_of(get: Callable[[Any, Any, Any], Awaitable[dict[str, Any]]]) -> Any:
        async def run(runtime: Any, message: Any, state: Any = None) -> Any:
            result = await get(runtime, message, state)
            return ProviderResult(
                text=result["text"], values=_json_safe(result["values"]), data=_json_safe(result["data"])
            )

        return run

    def examples_of(rows: list[list[dict[str, Any]]]) -> list[list[Any]]:
        return [[ActionExample(name=m["name"], content=m["content"]) for m in row] for row in rows]

    plugin = plugin or _default()
    service_class = type("ImagineVideoElizaService", (ImagineVideoService, ElizaService), {})
    return ElizaPlugin(
        name=plugin.name,
        description=plugin.description,
        init=plugin.init,
        config=dict(plugin.config),
        services=[service_class],
        actions=[
            ElizaAction(
                name=a.name,
                description=a.description,
                similes=a.similes,
                validate=a.validate,
                handler=handler_of(a.handler),
                examples=examples_of(a.examples),
                parameters=[ParseDict(p.to_json(), ActionParameter()) for p in a.parameters] or None,
            )
            for a in plugin.actions
        ],
        providers=[
            ElizaProvider(name=p.name, description=p.description, get=provider_of(p.get), dynamic=p.dynamic)
            for p in plugin.providers
        ],
        evaluators=[
            ElizaEvaluator(
                name=e.name,
                description=e.description,
                similes=e.similes,
                validate=e.validate,
                handler=handler_of(e.handler),
                always_run=e.always_run,
                examples=[
                    EvaluationExample(
                        prompt=x["prompt"], outcome=x["outcome"], messages=[ActionExample(**m) for m in x["messages"]]
                    )
                    for x in e.examples
                ],
            )
            for e in plugin.evaluators
        ],
    )


def _json_safe(value: Any) -> Any:
    """Protobuf ``Struct`` holds only JSON: paths become strings, ints stay numbers."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Path | Decimal):
        return str(value)
    return str(value)


def _is_elizaos_runtime(runtime: Any) -> bool:
    try:
        from elizaos.types.runtime import IAgentRuntime
    except ImportError:
        return False
    return isinstance(runtime, IAgentRuntime)


async def register(runtime: Any) -> None:
    """Register into a host: the ``elizaos`` adapter for an elizaos runtime, the plain plugin otherwise."""
    await runtime.register_plugin(elizaos_plugin() if _is_elizaos_runtime(runtime) else _default())
