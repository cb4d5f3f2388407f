"""The video agent: LangChain ``create_agent`` with the Imagine tools, prompts and guard rails.

``build_agent()`` wires the five tools, the system prompt from ``prompts/`` and middleware:

- human approval (``HumanInTheLoopMiddleware``, needs the checkpointer and a ``thread_id``) for a
  ``generate_video`` call whose quoted price is over the wallet's approval threshold, or that would
  deploy a coin under the ``ask`` policy; an approved call reaches the wallet marked as approved;
- limits on model calls and tool calls per run (at most ``generate_limit`` paid videos per run);
- retries of transient model errors (rate limits, 5xx, timeouts);
- the coin disclosure: whenever a coin was deployed, the final answer says the paying wallet is its
  creator and earns its trading fees (money-safety rule 6), whatever the model wrote.

Run it with ``context=ImagineContext(service=...)`` and ``config={"configurable": {"thread_id": ...}}``.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from langchain.agents import create_agent
from langchain.agents.middleware import (
    AgentMiddleware,
    AgentState,
    HumanInTheLoopMiddleware,
    InterruptOnConfig,
    ModelCallLimitMiddleware,
    ModelRequest,
    ModelRetryMiddleware,
    ToolCallLimitMiddleware,
    dynamic_prompt,
)
from langchain_core.exceptions import ModelError
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from pydantic import BaseModel, Field

from ..config import Settings
from ..errors import ConfigurationError
from ..money import format_usdc
from ..prompts import render_prompt
from ..tools import ApprovalGate, ImagineContext, human_approved, imagine_tools, parse_tool_result
from .planner.model import PLANNER_NAME, OfflinePlanner

if TYPE_CHECKING:
    from langchain.agents.middleware import ToolCallRequest
    from langgraph.graph.state import CompiledStateGraph
    from langgraph.runtime import Runtime
    from langgraph.types import Checkpointer, Command

    from ..service import ImagineService

__all__ = ["ImagineContext", "VideoReport", "build_agent", "chat_model", "system_prompt"]

COIN_TOOLS = ("generate_video",)


class VideoReport(BaseModel):
    """A structured final answer (``build_agent(response_format=VideoReport)``)."""

    reply: str = Field(description="What to tell the user, in the narration format")
    task_id: str | None = Field(default=None, description="The task id of the video, if one was started")
    status: str | None = Field(default=None, description="completed, still_running or failed")
    video_path: str | None = Field(default=None, description="Downloaded video file")
    video_url: str | None = Field(default=None, description="Video URL")
    preview_url: str | None = Field(default=None, description="First-frame image URL")
    paid: str | None = Field(default=None, description="What was paid, to whom, with the transaction")
    transaction: str | None = Field(default=None, description="Payment transaction hash")
    coin_creator: str | None = Field(default=None, description="Creator wallet of the deployed coin, if any")


def chat_model(settings: Settings | None = None) -> BaseChatModel:
    """The configured chat model: ``ChatOpenAI(IMAGINE_MODEL)``, or the offline planner when none is set.

    ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` (any OpenAI-compatible server) are read from the
    environment by ``ChatOpenAI``; with only a base URL, a placeholder key is sent.
    """
    name = (settings or Settings()).model
    if not name or name in ("offline", "planner", PLANNER_NAME):
        return OfflinePlanner()
    from langchain_openai import ChatOpenAI

    if os.environ.get("OPENAI_API_KEY"):
        return ChatOpenAI(model=name)
    if os.environ.get("OPENAI_BASE_URL"):
        return ChatOpenAI(model=name, api_key="not-needed")
    raise ConfigurationError(
        f"IMAGINE_MODEL={name} needs OPENAI_API_KEY (or OPENAI_BASE_URL for an OpenAI-compatible server); "
        "unset IMAGINE_MODEL to use the offline planner"
    )


def system_prompt(context: ImagineContext | None = None, settings: Settings | None = None) -> str:
    """The system prompt for this context: the policy, threshold and sandbox note filled in."""
    settings = context.service.settings if context is not None else (settings or Settings())
    policy = context.policy if context is not None else settings.auto_clank
    threshold = context.service.approval_threshold if context is not None else (settings.atomic("approval_threshold"))
    address = context.service.address if context is not None else "the paying wallet"
    sandbox = context is not None and context.service.is_sandbox
    return render_prompt(
        "system",
        threshold=format_usdc(threshold) if threshold is not None else "no threshold (none are paused)",
        sandbox="\nThis run uses the embedded sandbox: payments are simulated and no real money moves.\n"
        if sandbox
        else "",
        enhance=render_prompt("enhance"),
        autoclank=render_prompt("autoclank", policy=policy, address=address),
        narrate=render_prompt("narrate"),
    )


class _ApprovalMark(AgentMiddleware[AgentState[Any], ImagineContext, Any]):
    """Runs a generate_video call that paused for a human, and so was approved, marked as approved.

    The mark is a context variable the wallet's approver reads; HumanInTheLoopMiddleware (listed
    before this one) only lets a paused call through when the human approved or edited it.
    """

    def __init__(self, gate: ApprovalGate) -> None:
        super().__init__()
        self.gate = gate

    def wrap_tool_call(
        self, request: ToolCallRequest, handler: Callable[[ToolCallRequest], ToolMessage | Command[Any]]
    ) -> ToolMessage | Command[Any]:
        decision = self.gate.recorded(request.tool_call.get("id"))
        if request.tool_call["name"] != "generate_video" or decision is None or not decision.needed:
            return handler(request)
        with human_approved(decision.approval()):
            return handler(request)

    async def awrap_tool_call(
        self, request: ToolCallRequest, handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]]
    ) -> ToolMessage | Command[Any]:
        decision = self.gate.recorded(request.tool_call.get("id"))
        if request.tool_call["name"] != "generate_video" or decision is None or not decision.needed:
            return await handler(request)
        with human_approved(decision.approval()):
            return await handler(request)


def _coin_creator(messages: Sequence[Any]) -> str | None:
    """The creator wallet of a coin deployed in this turn (since the last user message), if any."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return None
        if isinstance(message, ToolMessage) and message.name in COIN_TOOLS:
            body = parse_tool_result(message.content) or {}
            coin = body.get("coin")
            if isinstance(coin, dict) and coin.get("creator"):
                return str(coin["creator"])
    return None


class _CoinDisclosure(AgentMiddleware[AgentState[Any], ImagineContext, Any]):
    """Rule 6: a final answer after a coin was deployed always says who its creator is."""

    def after_model(self, state: AgentState[Any], runtime: Runtime[ImagineContext]) -> dict[str, Any] | None:
        messages = state["messages"]
        last = messages[-1] if messages else None
        if not isinstance(last, AIMessage) or last.tool_calls or not isinstance(last.content, str):
            return None
        creator = _coin_creator(messages)
        if creator is None or (creator.lower() in last.content.lower() and "creator" in last.content.lower()):
            return None
        note = (
            f"Coin: a Clanker coin was deployed for this video; the paying wallet {creator} is its creator "
            "and earns its trading fees."
        )
        return {"messages": [last.model_copy(update={"content": f"{last.content}\n{note}".strip()})]}

    async def aafter_model(self, state: AgentState[Any], runtime: Runtime[ImagineContext]) -> dict[str, Any] | None:
        return self.after_model(state, runtime)


def _transient(error: BaseException) -> bool:
    """Retry what a provider marks retryable (rate limits, 5xx, timeouts, dropped connections) — nothing else."""
    return isinstance(error, ModelError) and error.is_retryable


def build_agent(
    model: BaseChatModel | str | None = None,
    service: ImagineService | None = None,
    *,
    settings: Settings | None = None,
    checkpointer: Checkpointer | None = None,
    response_format: Any = None,
    model_call_limit: int = 8,
    tool_call_limit: int = 16,
    generate_limit: int = 3,
    retries: int = 2,
    middleware: Sequence[AgentMiddleware[Any, Any, Any]] = (),
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The video agent on ``langchain.agents.create_agent``.

    ``model``: a LangChain chat model, a model name for ``ChatOpenAI``, or None for the configured one
    (``IMAGINE_MODEL``), which defaults to the offline planner. ``service``: used when a run passes no
    ``ImagineContext``. ``checkpointer``: where paused runs wait for approval (default in memory).
    ``response_format``: e.g. ``VideoReport`` for a structured final answer.
    """
    settings = settings or (service.settings if service is not None else Settings())
    if model is None:
        model = chat_model(settings)
    elif isinstance(model, str):
        model = chat_model(settings.model_copy(update={"model": model}))
    default = ImagineContext(service=service) if service is not None else None
    gate = ApprovalGate(default)

    @dynamic_prompt
    def imagine_system_prompt(request: ModelRequest) -> str:
        context = request.runtime.context if request.runtime is not None else None
        return system_prompt(context if isinstance(context, ImagineContext) else default, settings)

    if checkpointer is None:
        from langgraph.checkpoint.memory import InMemorySaver

        checkpointer = InMemorySaver()
    approval = InterruptOnConfig(
        allowed_decisions=["approve", "edit", "reject"], description=gate.describe, when=gate.when
    )
    stack: list[AgentMiddleware[Any, Any, Any]] = [
        HumanInTheLoopMiddleware(
            interrupt_on={"generate_video": approval}, description_prefix="Payment needs approval"
        ),
        _ApprovalMark(gate),
        _CoinDisclosure(),
        imagine_system_prompt,
        ModelCallLimitMiddleware(run_limit=model_call_limit, exit_behavior="end"),
        ToolCallLimitMiddleware(run_limit=tool_call_limit, exit_behavior="continue"),
        ToolCallLimitMiddleware(tool_name="generate_video", run_limit=generate_limit, exit_behavior="continue"),
        ModelRetryMiddleware(max_retries=retries, retry_on=_transient, on_failure="error"),
        *middleware,
    ]
    return create_agent(
        model,
        imagine_tools(default),
        middleware=stack,
        context_schema=ImagineContext,
        checkpointer=checkpointer,
        response_format=response_format,
        name="imagine-agent",
    )
