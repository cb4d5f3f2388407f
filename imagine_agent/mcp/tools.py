"""The same operations over the Model Context Protocol, for Claude Desktop, Cursor and ElizaOS's MCP plugin.

    imagine-agent mcp                      # stdio (what desktop clients spawn; ``serve.py``)
    python -m imagine_agent.mcp_server     # the same
    imagine-agent mcp --transport streamable-http --port 8765   # bearer token required (IMAGINE_MCP_TOKEN)

Tools: ``quote_video``, ``generate_video`` (progress notifications while it renders), ``video_status``,
``wait_for_video``, ``budget_status``. Resources: ``imagine://budget``, ``imagine://receipts``,
``imagine://videos/pending``. Each tool only calls ``ImagineService``; a failure comes back as an MCP
error result carrying the error's message (never a traceback, never a key). Caps come from the
server's settings (``IMAGINE_*``), never from tool arguments.

Common MCP clients (the TypeScript SDK, ``@elizaos/plugin-mcp``) give up on a call after 60 s whatever
progress they are sent, so no call waits longer than ``IMAGINE_MCP_WAIT_SECONDS`` (45 s): a longer
render returns ``status: "still_running"`` with its task id, and ``wait_for_video`` picks it up. A call
the client cancels stops polling at once; its job stays pending and its payment recorded.

A payment over the approval threshold, and a coin under ``IMAGINE_AUTO_CLANK=ask``, need a person:
they are asked through MCP elicitation when the client supports it; otherwise ``no_human_to_ask`` sends
the call to the operator's approvals queue: it answers ``awaiting_approval`` with the approval's id
(nothing signed), and ``wait_for_video(approvalId)`` continues it once the operator approved.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, cast

from mcp.server.mcpserver import Context, Elicit, ElicitationResult, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp_types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .. import __version__
from ..decisions import decide_coin
from ..errors import AwaitingApprovalError, ImagineError, ImagineTimeoutError
from ..limits import MAX_DURATION, MAX_PROMPT_CHARS, MIN_DURATION
from .elicitation import (
    _APPROVAL_ID,
    _PLAN,
    HumanAsk,
    _approved_plan,
    _awaiting,
    _can_elicit,
    _client_name,
    _is_approval,
    _Plan,
    _queue_approvals,
)
from .lazy import LazyService

if TYPE_CHECKING:  # the service, its client, wallet, ledger and the sandbox load on the first tool call
    from ..models import TaskStatus
    from ..service import ImagineService

__all__ = ["INSTRUCTIONS", "READ_ONLY", "create_server"]

INSTRUCTIONS = """Buys AI videos from the Imagine API, paying per request in USDC on Base (x402).
Quote first (quote_video signs nothing), then generate_video pays once and waits for the render.
Spending is capped by the operator; budget_status shows what is left. A call waits at most a bounded
time: if generate_video returns status still_running, resume it with wait_for_video(task_id) (call it
again while it says still_running) instead of paying again."""

# ------------------------------------------------------------------------------------------ arguments

Prompt = Annotated[
    str,
    Field(
        strict=True,
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        description=f"What the video shows, in plain text (1-{MAX_PROMPT_CHARS} characters): subject, action, "
        "setting, camera, lighting, style.",
    ),
]
Duration = Annotated[
    float,
    Field(
        strict=True,
        ge=MIN_DURATION,
        le=MAX_DURATION,
        description=f"Length in seconds, {MIN_DURATION}-{MAX_DURATION}; 8 when omitted.",
    ),
]
Image = Annotated[
    str,
    Field(
        strict=True,
        max_length=16 * 1024 * 1024,
        description="Starting image for image-to-video: an http(s) URL or a data:image/...;base64 URL (no file "
        "paths). Empty (the default) for text-to-video.",
    ),
]
AutoEnhance = Annotated[
    bool, Field(strict=True, description="Ask the server to rewrite the prompt with the video model's prompting guide.")
]
AutoClank = Annotated[
    bool,
    Field(
        strict=True,
        description="Ask to deploy a coin (Clanker token) for the video; the paying wallet becomes its "
        "creator. The operator's autoClank policy decides: it may be ignored, sent, or need a person's approval.",
    ),
]
VideoModel = Annotated[
    str,
    Field(
        strict=True,
        max_length=64,
        pattern=r"^([A-Za-z0-9][A-Za-z0-9._:/-]*)?$",
        description="The video model to render with: one of the 'models' quote_video lists. Empty (the default) "
        "for the server's default model.",
    ),
]
TaskId = Annotated[
    str,
    Field(
        strict=True,
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
        description="The taskId that generate_video returned.",
    ),
]

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=True)


class _KnownArgsOnly(BaseModel):
    """Mixed into a tool's argument model: unknown arguments are refused, as the LangChain tools refuse them."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    tool_name: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown(cls, data: Any) -> Any:
        known = set(cls.model_fields) | {f.alias for f in cls.model_fields.values() if f.alias}
        unknown = sorted(set(data) - known) if isinstance(data, dict) else []
        if unknown:
            raise ValueError(
                f"unknown argument(s) {', '.join(unknown)}: not arguments of {cls.tool_name} (prices, "
                "caps and payees are set by the operator and cannot be passed). Nothing was sent or paid."
            )
        return data


def _strict(tool: Tool) -> Tool:
    """The tool with an argument model that refuses unknown arguments (``additionalProperties: false``)."""
    base = tool.fn_metadata.arg_model
    strict = cast(
        "type[ArgModelBase]",
        type(base.__name__, (_KnownArgsOnly, base), {"__module__": __name__, "tool_name": tool.name}),
    )
    tool.fn_metadata.arg_model = strict
    tool.parameters = strict.model_json_schema(by_alias=True)
    return tool


def _tool(fn: Callable[..., Any], annotations: ToolAnnotations, description: str) -> Tool:
    """A tool with strict arguments; its description is one paragraph, without the source's indentation."""
    text = " ".join(inspect.cleandoc(description).split())
    return _strict(Tool.from_function(fn, description=text, annotations=annotations))


# ------------------------------------------------------------------------------------------ helpers


def _remote_image(image: str) -> str | None:
    """Only URLs: a file path would have this server upload its own files on a client's say-so."""
    if not image:
        return None
    if not image.startswith(("http://", "https://", "data:")):
        raise ToolError("InvalidRequestError: image must be an http(s) URL or a data: URL, not a file path")
    return image


async def _call(work: Callable[[], Awaitable[Any]]) -> Any:
    """Run one service call; its errors become MCP tool errors with the message (and refusal code) only."""
    try:
        return await work()
    except AwaitingApprovalError:
        raise
    except ImagineError as exc:
        raise ToolError(f"{type(exc).__name__} (code {exc.code}): {exc}") from None


def _progress(ctx: Context) -> Callable[[TaskStatus], Awaitable[None]]:
    """Forward each poll as an MCP progress notification."""

    async def report(status: TaskStatus) -> None:
        done = 100.0 if status.status == "completed" else float(status.progress or 0)
        await ctx.report_progress(done, 100.0, status.status)

    return report


def _still_running(task_id: str, waited: float, last: str | None) -> dict[str, Any]:
    return {
        "taskId": task_id,
        "status": "still_running",
        "lastStatus": last,
        "waitedSeconds": round(waited, 1),
        "next": f"The video is still being made and is paid for. Call wait_for_video with task_id {task_id} "
        "to keep waiting (call it again while it answers still_running), or run "
        f"`imagine-agent wait {task_id}`. Do not call generate_video again for it.",
    }


# ------------------------------------------------------------------------------------------ the server


def create_server(service: ImagineService, *, wait_seconds: float | None = None) -> MCPServer:
    """An MCP server over one open service (the caller closes the service).

    ``wait_seconds`` bounds every call's wait for a render (default ``IMAGINE_MCP_WAIT_SECONDS``, 45 s).
    """
    settings = service.settings
    limit = settings.mcp_wait_seconds if wait_seconds is None else wait_seconds
    if not isinstance(service, LazyService):  # a lazy service does it when it is created
        _queue_approvals(service)

    def coin_of(requested: bool) -> tuple[bool, bool]:
        """(send the coin, a person must approve it): the operator's policy decides, never the flag alone."""
        coin = decide_coin(settings.auto_clank, requested, assume_approved=True)
        return coin.send, coin.needs_person

    async def bounded_wait(ctx: Context, task_id: str, started: float, download: bool) -> dict[str, Any]:
        """Wait for the task until this call's time is up; then the result, or ``still_running``."""
        last: list[str] = []

        async def progress(status: TaskStatus) -> None:
            last.append(status.status)
            await _progress(ctx)(status)

        remaining = max(limit - (time.monotonic() - started), 0.001)  # always one status read
        try:
            status = await service.await_task(task_id, on_progress=progress, timeout=remaining)
        except ImagineTimeoutError:
            return _still_running(task_id, time.monotonic() - started, last[-1] if last else None)
        except ImagineError as exc:
            raise ToolError(f"{type(exc).__name__} (code {exc.code}): {exc}") from None
        from ..results import delivery_facts

        facts = delivery_facts(status, service.address)
        result: dict[str, Any] = {"taskId": task_id, **status.to_wire(), **facts}
        if download and status.status == "completed":
            try:
                files = await asyncio.to_thread(service.download, task_id, None, status=status)
            except ImagineError as exc:
                raise ToolError(
                    f"{type(exc).__name__} (code {exc.code}): {exc}. The video is done and paid for: "
                    "call wait_for_video "
                    f"with task_id {task_id} to download it again (nothing more is paid)."
                ) from None
            result["videoPath"] = str(files.video)
            result["previewPath"] = str(files.preview) if files.preview else None
        return result

    async def quote_video(
        prompt: Prompt,
        duration: Duration = 8,
        image: Image = "",
        auto_enhance: AutoEnhance = False,
        auto_clank: AutoClank = False,
        video_model: VideoModel = "",
    ) -> dict[str, Any]:
        coin, needs_person = coin_of(auto_clank)
        result = await _call(
            lambda: service.aquote(
                prompt,
                duration=duration,
                image=_remote_image(image),
                auto_enhance=auto_enhance,
                auto_clank=coin,
                video_model=video_model or None,
            )
        )
        person = service.person_needed(result.quote.amount)
        return {
            **result.to_json(),
            "autoClank": coin,
            "needsHumanApproval": person.needed or needs_person,
            "sandbox": service.is_sandbox,
        }

    async def approval(
        prompt: str,
        duration: float,
        image: str,
        auto_enhance: bool,
        auto_clank: bool,
        ctx: Context,
        video_model: str = "",
    ) -> Elicit[Any] | _Plan:
        """Quote, apply the operator's policy, and ask a person when one must approve (MCP elicitation).

        Runs before ``generate_video``'s body, on every round of an elicitation; signs nothing.
        """
        coin, needs_person = coin_of(auto_clank)
        quote = await _call(
            lambda: service.aquote(
                prompt,
                duration=duration,
                image=_remote_image(image),
                auto_enhance=auto_enhance,
                auto_clank=coin,
                video_model=video_model or None,
            )
        )
        over = service.person_needed(quote.quote.amount).needed
        ask = (
            HumanAsk("generate_video", prompt, quote.quote.amount, over, needs_person) if over or needs_person else None
        )
        plan = _Plan(
            quote.quote.amount,
            coin,
            ask,
            None if quote.allowed else quote.refusal,
            None if quote.allowed else quote.refusal_code,
            quote=quote.quote,
        )
        _PLAN.set(plan)
        return plan.question() if plan.refusal is None and ask is not None and _can_elicit(ctx, settings) else plan

    async def generate_video(
        prompt: Prompt,
        ctx: Context,
        answer: ElicitationResult[Any],
        duration: Duration = 8,
        image: Image = "",
        auto_enhance: AutoEnhance = False,
        auto_clank: AutoClank = False,
        wait: Annotated[
            bool,
            Field(
                strict=True,
                description=(
                    "Wait for the render (bounded, see still_running); false returns right after "
                    "payment with the task id."
                ),
            ),
        ] = True,
        video_model: VideoModel = "",
    ) -> dict[str, Any]:
        started = time.monotonic()
        plan, person = _approved_plan(_PLAN.get(), answer, _can_elicit(ctx, settings))
        # A person approved this price (and coin), payee and network over elicitation: the wallet pays no more,
        # and records the approval in the ledger with the client's name.
        approved = (
            service.approved_by_person(plan.quote, surface="mcp", approved_by=_client_name(ctx))
            if person and plan.quote is not None
            else contextlib.nullcontext()
        )
        try:
            with approved:
                outcome = await _call(
                    lambda: service.agenerate(
                        prompt,
                        duration=duration,
                        image=_remote_image(image),
                        auto_enhance=auto_enhance,
                        auto_clank=plan.coin,
                        wait=False,
                        video_model=video_model or None,
                        max_amount=plan.amount if person else None,
                    )
                )
        except AwaitingApprovalError as exc:
            return _awaiting(exc)
        body = outcome.to_json()
        if wait:
            body.update(await bounded_wait(ctx, outcome.task_id, started, download=True))
        budget = (await service.abudget()).to_json()
        vocabulary = {key: budget[key] for key in budget if key.startswith(("leftToday", "leftInTotal", "largestNext"))}
        return {**body, "autoClank": plan.coin, "budget": {**budget["remaining"], **vocabulary}}

    # The person's answer is filled by the approval resolver, not by the client (a closure: set as an object).
    generate_video.__annotations__["answer"] = Annotated[ElicitationResult[Any], Resolve(approval)]

    async def video_status(task_id: TaskId) -> dict[str, Any]:
        from ..results import delivery_facts

        status = await _call(lambda: service.astatus(task_id))
        return {"taskId": task_id, **status.to_wire(), **delivery_facts(status, service.address)}

    async def wait_for_video(
        task_id: TaskId,
        ctx: Context,
        download: Annotated[
            bool, Field(strict=True, description="Download the video (and preview) when it is done.")
        ] = True,
    ) -> dict[str, Any]:
        started = time.monotonic()
        if _APPROVAL_ID.match(task_id) is not None and await asyncio.to_thread(_is_approval, service, task_id):
            try:  # an approval id: make the queued request once the operator approved it (paying that, once)
                outcome = await _call(lambda: asyncio.to_thread(service.resume_approval, task_id, wait=False))
            except AwaitingApprovalError as exc:
                return _awaiting(exc)
            task_id = outcome.task_id
        return await bounded_wait(ctx, task_id, started, download)

    async def budget_status() -> dict[str, Any]:
        report = await _call(service.abudget)
        return {**report.to_json(), "sandbox": service.is_sandbox}

    tools = [
        _tool(
            quote_video,
            READ_ONLY,
            """
            Price of one video, and whether the budget allows it. Signs and pays nothing.
            Takes exactly the arguments generate_video takes; needsHumanApproval says whether paying it
            will ask a person.
        """,
        ),
        _tool(
            generate_video,
            ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True),
            f"""
            Pay for one video from the operator's wallet (within its caps), wait for it and download it.
            Sends progress notifications while it renders. A call waits at most {limit:g} s: a longer render
            returns status still_running with the taskId; then call wait_for_video. An identical request
            attaches to the first one (no new payment) only while that one is still pending; once it has
            finished, the same request pays again. Payments over the approval threshold, and coins under
            the operator's 'ask' policy, need a person's approval.
        """,
        ),
        _tool(video_status, READ_ONLY, "The current status of a video task, once (no waiting). Pays nothing."),
        _tool(
            wait_for_video,
            ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True),
            f"""
            Wait for an already paid task (with progress notifications), then download it. Pays nothing.
            Waits at most {limit:g} s per call; call it again while it returns status still_running. Given
            the approvalId of a generate_video that answered awaiting_approval, it makes that request once
            the operator approved it (paying what was approved, once).
        """,
        ),
        _tool(
            budget_status,
            READ_ONLY,
            "Spent, reserved, unknown and remaining budget, the operator's caps, and the kill switch.",
        ),
    ]
    server = MCPServer(
        "imagine-agent", version=__version__, instructions=INSTRUCTIONS, tools=tools, log_level="WARNING"
    )

    @server.resource("imagine://budget", name="budget", mime_type="application/json")
    async def budget_resource() -> str:
        """The budget report (as budget_status)."""
        report = await service.abudget()
        return json.dumps(report.to_json())

    @server.resource("imagine://receipts", name="receipts", mime_type="application/json")
    async def receipts_resource() -> str:
        """Every payment, newest first: amount, state, task, transaction."""
        from ..service.results import receipt_json

        try:
            records = await asyncio.to_thread(service.receipts, 200)
        except ImagineError as exc:
            raise ResourceError(str(exc)) from None
        return json.dumps({"payments": [receipt_json(r) for r in records]})

    @server.resource("imagine://videos/pending", name="pending videos", mime_type="application/json")
    async def pending_resource() -> str:
        """Paid tasks that have not finished yet (resume them with wait_for_video)."""
        tasks = await asyncio.to_thread(service.pending)
        return json.dumps(
            {
                "tasks": [
                    {"taskId": t.task_id, "prompt": t.prompt, "status": t.status, "progress": t.progress} for t in tasks
                ]
            }
        )

    return server
