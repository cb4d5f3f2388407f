"""A deterministic offline planner: a LangChain chat model that is not an LLM.

It lets the agent run with no keys and no network — the default when no model is configured, and the
test double. It reads the user's last message with regular expressions (duration, image URL,
``remix <id>``, "coin it"), enhances the prompt by the rules of ``prompts/enhance.md``, then plans
the same tool flow an LLM would: quote (with a budget check) → generate (the tool waits) → narrate.
That is three model calls per delivered video. Everything it writes says it is a rule-based planner.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from ...tools import parse_tool_result
from .enhance import enhance_prompt
from .intent import Intent, VideoAsk, parse_request
from .narrate import (
    HELP,
    NOTHING_TO_CONFIRM,
    PLANNER_LABEL,
    UNCLEAR,
    _narrate_budget,
    _narrate_coin_refused,
    _narrate_quote,
    _narrate_refusal,
    _narrate_video,
    _report_fields,
)

PLANNER_NAME = "imagine-offline-planner"
VIDEO_TOOLS = frozenset({"quote_video", "generate_video", "wait_for_video", "video_status", "budget_status"})

# ---------------------------------------------------------------------------------------- planning


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return " ".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content if isinstance(b, str | dict))


def _parsed(message: ToolMessage) -> dict[str, Any]:
    return parse_tool_result(message.content) or {"message": _text(message)}


def _call(name: str, args: dict[str, Any]) -> ToolCall:
    return ToolCall(name=name, args=args, id=f"call_{uuid.uuid4().hex[:24]}", type="tool_call")


def _video_args(ask: VideoAsk) -> dict[str, Any]:
    args: dict[str, Any] = {"prompt": enhance_prompt(ask)}
    if ask.duration is not None:
        args["duration"] = ask.duration
    if ask.image:
        args["image"] = ask.image
    if ask.remix_of:
        args["remix_of"] = ask.remix_of
    if ask.coin:
        args["auto_clank"] = True
    if ask.auto_enhance:
        args["auto_enhance"] = True
    return args


def _calls(messages: Sequence[BaseMessage], name: str) -> list[ToolCall]:
    return [c for m in messages if isinstance(m, AIMessage) for c in m.tool_calls if c["name"] == name]


def _confirmed(history: Sequence[BaseMessage], confirm: Intent) -> Intent | None:
    """ "Yes" / "make it" after a quote: the request quoted in the previous turn, with the same arguments.

    None when the previous turn quoted nothing, or already bought its video (a yes never buys twice).
    """
    humans = [i for i, m in enumerate(history) if isinstance(m, HumanMessage)]
    if not humans:
        return None
    segment = history[humans[-1] + 1 :]
    quotes = _calls(segment, "quote_video")
    if not quotes or _calls(segment, "generate_video"):
        return None
    args = dict(quotes[-1]["args"])
    answer = next((_parsed(m) for m in reversed(segment) if isinstance(m, ToolMessage) and m.name == "quote_video"), {})
    change = confirm.video
    if args.get("auto_clank") and (
        not (answer.get("request") or {}).get("autoClank") or (change is not None and change.coin is False)
    ):
        args.pop("auto_clank")  # the coin was refused by policy (or declined now): go on without it
    if change is not None and change.duration is not None:
        args["duration"] = change.duration
    ask = next(
        (
            intent.video
            for i in reversed(humans)
            if (intent := parse_request(_text(history[i]))).kind == "video" and intent.video is not None
        ),
        VideoAsk("the video you asked for"),
    )
    ask = VideoAsk(
        ask.subject,
        args.get("duration"),
        args.get("image"),
        args.get("remix_of"),
        bool(args.get("auto_clank")),
        bool(args.get("auto_enhance")),
        price_only=False,
    )
    return Intent("video", ask, args=args)


class OfflinePlanner(BaseChatModel):
    """A rule-based stand-in for an LLM: plans quote → generate → narrate from the user's message.

    Not an LLM and says so (``response_metadata`` and every narration). No network, no keys.
    """

    bound_tools: tuple[str, ...] = ()
    output_tool: dict[str, Any] | None = None
    """The structured-output tool (``response_format``) to answer with, when the agent has one."""

    @property
    def _llm_type(self) -> str:
        return PLANNER_NAME

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": PLANNER_NAME, "llm": False}

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Remember the tools; anything not a video tool is taken as the structured-output schema."""
        names: list[str] = []
        output = None
        for tool in tools:
            schema = convert_to_openai_tool(tool)["function"]
            if schema["name"] in VIDEO_TOOLS:
                names.append(schema["name"])
            else:
                output = schema
        return self.model_copy(update={"bound_tools": tuple(names), "output_tool": output})

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self.plan(messages)
        message.response_metadata = {"model_name": PLANNER_NAME, "planner": "rule-based, not an LLM"}
        return ChatResult(generations=[ChatGeneration(message=message)])

    # ---- the rules
    def plan(self, messages: Sequence[BaseMessage]) -> AIMessage:
        """The next step, from the last user message and the tool results since it."""
        start = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
        if start < 0:
            return self._answer([HELP], {})
        intent = parse_request(_text(messages[start]))
        turn = messages[start + 1 :]
        if intent.kind == "confirm":
            confirmed = _confirmed(messages[:start], intent)
            if confirmed is None:
                return self._answer([NOTHING_TO_CONFIRM], {})
            intent = confirmed
        results: dict[str, tuple[dict[str, Any], bool]] = {}
        for m in turn:
            if isinstance(m, ToolMessage) and m.name:
                results[m.name] = (_parsed(m), m.status != "error")
        if not any(isinstance(m, AIMessage) for m in turn):
            return self._first_step(intent)
        ask = intent.video
        for name in ("generate_video", "wait_for_video"):
            if name in results:
                body, ok = results[name]
                ok = ok and "error" not in body
                quote = results.get("quote_video", ({}, False))[0]
                return self._answer(_narrate_video(ask, body, ok, quote), body)
        if "quote_video" in results:
            quote, ok = results["quote_video"]
            if ok and ask is not None and ask.price_only:
                return self._answer(_narrate_quote(ask, quote), quote)
            if ok and ask is not None and ask.coin and not (quote.get("request") or {}).get("autoClank"):
                return self._answer(_narrate_coin_refused(quote), quote)
            if ok and quote.get("allowed") and "generate_video" in self.bound_tools and ask is not None:
                last_quote = next(
                    c
                    for m in reversed(turn)
                    if isinstance(m, AIMessage)
                    for c in m.tool_calls
                    if c["name"] == "quote_video"
                )
                return AIMessage(content="", tool_calls=[_call("generate_video", dict(last_quote["args"]))])
            return self._answer(_narrate_refusal(ask, quote), quote)
        if "video_status" in results:
            body, ok = results["video_status"]
            text = f"Task {body.get('taskId')}: {body.get('status')}"
            if body.get("progress") is not None:
                text += f" ({body['progress']}%)"
            if body.get("videoUrl"):
                text += f". Video: {body['videoUrl']}"
            return self._answer([text if ok else f"Could not check it: {body.get('message')}"], body)
        if "budget_status" in results:
            body, ok = results["budget_status"]
            return self._answer(
                _narrate_budget(body) if ok else [f"Could not read the budget: {body.get('message')}"], body
            )
        return self._answer(["I could not finish that request."], {})

    def _first_step(self, intent: Intent) -> AIMessage:
        if intent.kind == "video" and intent.video is not None:
            args = dict(intent.args) if intent.args is not None else _video_args(intent.video)
            calls = [_call("quote_video", args)]
            if "budget_status" in self.bound_tools:
                calls.append(_call("budget_status", {}))
            return AIMessage(content="", tool_calls=calls)
        if intent.kind == "budget":
            return AIMessage(content="", tool_calls=[_call("budget_status", {})])
        if intent.kind == "status" and intent.task_id:
            return AIMessage(content="", tool_calls=[_call("video_status", {"task_id": intent.task_id})])
        if intent.kind == "wait" and intent.task_id:
            return AIMessage(content="", tool_calls=[_call("wait_for_video", {"task_id": intent.task_id})])
        if intent.kind == "unclear":
            return self._answer([UNCLEAR], {})
        return self._answer([HELP], {})

    def _answer(self, lines: list[str], facts: dict[str, Any]) -> AIMessage:
        text = "\n".join([*lines, PLANNER_LABEL])
        if self.output_tool is None:
            return AIMessage(content=text)
        # A structured final answer: fill the schema's fields we know, in its own names.
        known = _report_fields(text, facts)
        props = (self.output_tool.get("parameters") or {}).get("properties") or {}
        args = {k: v for k, v in known.items() if k in props}
        return AIMessage(content=text, tool_calls=[_call(self.output_tool["name"], args)])
