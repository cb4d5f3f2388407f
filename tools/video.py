"""The LangChain tools: quote_video, generate_video, wait_for_video, video_status, budget_status.

Each returns compact JSON the model can read and quote back. Errors from the Imagine stack come back
as error tool messages (``ToolException`` with ``handle_tool_error``) that say what happened and
whether anything was paid, so the model can explain or retry instead of the run stopping. Waiting
happens inside ``generate_video`` and ``wait_for_video``, with progress on the stream writer —
never as a loop of model calls.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

from langchain_core.tools import ArgsSchema, BaseTool, ToolException
from pydantic import Field, ValidationError, field_validator

from imagine_agent.errors import (
    AwaitingApprovalError,
    DownloadError,
    ImagineError,
    ImagineTimeoutError,
    PaymentStateUnknownError,
)
from imagine_agent.money import usdc_fields

from .approval import current_approval, person_approval
from .context import ImagineContext, resolve_context
from .schemas import BudgetArgs, Plan, Runtime, TaskArgs, VideoRequestArgs, WaitArgs, plan_request

if TYPE_CHECKING:
    from imagine_agent.client import Downloads
    from imagine_agent.flows import PaymentInfo
    from imagine_agent.models import TaskStatus
    from imagine_agent.service import BudgetReport, GenerationOutcome, ImagineService, QuoteResult

__all__ = [
    "PROGRESS_EVENT",
    "TOOL_NAMES",
    "BudgetStatusTool",
    "GenerateVideoTool",
    "ImagineTool",
    "QuoteVideoTool",
    "VideoStatusTool",
    "WaitForVideoTool",
    "imagine_tools",
    "parse_tool_result",
]

TOOL_NAMES = ("quote_video", "generate_video", "wait_for_video", "video_status", "budget_status")
PROGRESS_EVENT = "imagine_progress"
"""``type`` of the custom stream events the waiting tools write (``stream_mode="custom"``)."""


def parse_tool_result(content: Any) -> dict[str, Any] | None:
    """A video tool's JSON result from a tool message's content (also when a reviewer's edit notice
    precedes it); None when the content is not such a result (e.g. a rejection's text)."""
    if not isinstance(content, str):
        return None
    for text in (content, content.partition("Tool response:\n")[2]):
        try:
            body = json.loads(text)
        except ValueError:
            continue
        return body if isinstance(body, dict) else None
    return None


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str)


def _fail(error: BaseException | str, **extra: Any) -> NoReturn:
    """Hand an error back to the model as an error tool message (it never stops the run)."""
    if isinstance(error, str):
        body: dict[str, Any] = {"error": "Refused", "message": error}
    else:
        body = {"error": type(error).__name__, "code": getattr(error, "code", None), "message": str(error)}
        if isinstance(error, AwaitingApprovalError):
            body["approvalId"] = error.approval_id
    body.update(extra)
    if isinstance(error, PaymentStateUnknownError):
        body["paid"] = "unknown: the payment may have settled and counts as spent until reconciled; do not pay again"
    raise ToolException(_dump(body))


@contextmanager
def _errors(**extra: Any) -> Iterator[None]:
    try:
        yield
    except ImagineError as exc:
        _fail(exc, **extra)


def _explain_validation(error: ValidationError | Any) -> str:
    """Arguments the model got wrong, said so that it can fix them (nothing was sent or paid)."""
    problems = []
    for err in getattr(error, "errors", lambda: [])():
        where = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
        if err.get("type") == "extra_forbidden":
            problems.append(
                f"{where}: not an argument of this tool (prices, caps and payees are set by the "
                "operator and cannot be passed)"
            )
        else:
            problems.append(f"{where}: {err.get('msg')}")
    return _dump({"error": "InvalidArguments", "message": "; ".join(problems) or str(error), "paid": False})


def _paid(payment: PaymentInfo | None) -> dict[str, Any] | None:
    if payment is None:
        return None
    if payment.paid_by == "credits":
        return {
            **usdc_fields(0),
            "paidBy": "credits",
            "note": "paid from the provider's credits: no USDC moved, no budget used",
        }
    return {
        **usdc_fields(payment.amount),
        "network": payment.network,
        "payTo": payment.pay_to,
        "payer": payment.payer,
        "transaction": payment.transaction,
    }


def _budget_left(report: BudgetReport) -> dict[str, Any]:
    """nextCall is the largest next payment; today / total what is left today / in total (one vocabulary)."""
    t = report.totals
    left: dict[str, Any] = usdc_fields(report.largest_next_payment, "nextCall")
    if t.remaining_daily is not None:
        left.update(usdc_fields(t.remaining_daily, "today"))
    if t.remaining_total is not None:
        left.update(usdc_fields(t.remaining_total, "total"))
    if t.frozen:
        left["frozen"] = "the kill switch is on: no payments until the operator turns it off"
    return left


def _coin(plan: Plan, payer: str) -> dict[str, Any] | None:
    if not plan.auto_clank:
        return None
    return {
        "autoClank": True,
        "creator": payer,
        "earnsTradingFees": True,
        "note": f"A Clanker coin is deployed for this video with its first frame as the image; the paying "
        f"wallet {payer} is the coin's creator and earns its trading fees.",
    }


def _status_json(task_id: str, status: TaskStatus) -> dict[str, Any]:
    out: dict[str, Any] = {"taskId": task_id, "status": status.status}
    if status.progress is not None:
        out["progress"] = status.progress
    if status.video_url:
        out["videoUrl"] = status.video_url
    if status.preview_url:
        out["previewUrl"] = status.preview_url
    return out


def _delivery(out: dict[str, Any], status: TaskStatus, payer: str | None) -> dict[str, Any]:
    """Add the media page and the coin (address, symbol, chain, who created it) the result names."""
    from imagine_agent.results import delivery_facts

    out.update(delivery_facts(status, payer))
    return out


class _Progress:
    """Progress of a waiting tool, written to the graph's stream (``stream_mode="custom"``)."""

    def __init__(self, runtime: Any, tool: str) -> None:
        self.writer: Callable[[Any], None] | None = getattr(runtime, "stream_writer", None)
        self.tool = tool
        self.task_id: str | None = None

    def emit(self, stage: str, **data: Any) -> None:
        if self.writer is not None:
            self.writer({"type": PROGRESS_EVENT, "tool": self.tool, "stage": stage, "taskId": self.task_id, **data})

    def __call__(self, status: TaskStatus) -> None:
        self.emit("status", status=status.status, progress=100 if status.status == "completed" else status.progress)


class ImagineTool(BaseTool):
    """Base of the video tools: the service comes from ``runtime.context`` (or ``context=`` for use
    outside an agent), never from an argument; output is compact JSON; errors are tool messages."""

    context: Any = Field(default=None, exclude=True, repr=False)
    """An ``ImagineContext`` used when the run supplies none (the tool used outside an agent)."""
    handle_tool_error: bool | str | Callable[[ToolException], Any] | None = True
    handle_validation_error: bool | str | Callable[[Any], str] | None = _explain_validation

    @field_validator("context")
    @classmethod
    def _is_context(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, ImagineContext):
            raise TypeError("context must be an ImagineContext")
        return value

    def _ctx(self, runtime: Any) -> ImagineContext:
        with _errors():
            return resolve_context(runtime, self.context)


class QuoteVideoTool(ImagineTool):
    name: str = "quote_video"
    description: str = (
        "Ask the price of one video and whether the budget allows it. Signs nothing and pays nothing. "
        "Call it with exactly the arguments you would pass to generate_video."
    )
    args_schema: ArgsSchema | None = VideoRequestArgs

    def _plan(self, ctx: ImagineContext, fields: dict[str, Any]) -> Plan:
        with _errors(paid=False):
            return plan_request(VideoRequestArgs.model_validate(fields), ctx, human=None, assume_approved=True)

    def _json(self, ctx: ImagineContext, plan: Plan, result: QuoteResult) -> str:
        req = result.quote.requirement
        coin = ctx.service.decide_coin(plan.auto_clank, policy=ctx.policy, assume_approved=True)
        human = ctx.service.person_needed(req.amount, coin).needed
        out: dict[str, Any] = {
            **usdc_fields(req.amount, "price"),
            "network": req.network,
            "payTo": req.pay_to,
            "allowed": result.allowed,
            **usdc_fields(result.remaining, "budgetLeftNextCall"),
            "needsHumanApproval": human,
            "request": plan.to_json(),
        }
        if result.quote.models:
            out["models"] = result.quote.models
            out["defaultModel"] = result.quote.default_model
        if result.refusal:
            out["refusal"] = result.refusal
            out["refusalCode"] = result.refusal_code
        if ctx.service.is_sandbox:
            out["sandbox"] = True
        return _dump(out)

    def _run(self, runtime: Runtime = None, **fields: Any) -> str:
        ctx = self._ctx(runtime)
        plan = self._plan(ctx, fields)
        with _errors(paid=False):
            result = ctx.service.quote(plan.prompt, **plan.options())
        return self._json(ctx, plan, result)

    async def _arun(self, runtime: Runtime = None, **fields: Any) -> str:
        ctx = self._ctx(runtime)
        plan = self._plan(ctx, fields)
        with _errors(paid=False):
            result = await ctx.service.aquote(plan.prompt, **plan.options())
        return self._json(ctx, plan, result)


class _WaitingTool(ImagineTool):
    """Shared ending of generate_video and wait_for_video: wait (bounded), download, report."""

    def _pending(self, ctx: ImagineContext, task_id: str, exc: ImagineTimeoutError) -> dict[str, Any]:
        return {
            "taskId": task_id,
            "status": "still_running",
            "waitedSeconds": ctx.wait_limit,
            "next": f"The video is still being made. Call wait_for_video with task_id {task_id} to keep "
            f"waiting, or tell the user to run `imagine-agent wait {task_id}`. Do not pay again.",
        }

    def _failed(self, task_id: str, exc: ImagineError, paid: dict[str, Any] | None) -> NoReturn:
        _fail(
            exc,
            taskId=task_id,
            paid=paid,
            next="The generation did not produce a video. The payment stays recorded; do not retry "
            "unless the user asks (a retry is a new payment).",
        )

    def _delivered(
        self,
        ctx: ImagineContext,
        task_id: str,
        status: TaskStatus,
        downloads: Downloads | None,
        download_error: str | None,
    ) -> dict[str, Any]:
        out = _delivery(_status_json(task_id, status), status, ctx.service.address)
        if downloads is not None:
            out["videoPath"] = str(downloads.video)
            if downloads.preview is not None:
                out["previewPath"] = str(downloads.preview)
        if download_error:
            out["downloadError"] = download_error
        return out

    def _download(self, ctx: ImagineContext, task_id: str, status: TaskStatus) -> tuple[Downloads | None, str | None]:
        try:
            return ctx.service.download(task_id, ctx.downloads, status=status), None
        except DownloadError as exc:
            return None, str(exc)


class GenerateVideoTool(_WaitingTool):
    name: str = "generate_video"
    description: str = (
        "Pay for one video (the quoted price, from the operator's wallet, within its budget), wait for it and "
        "download it. Returns the video file, links, what was paid and the budget left — or a taskId to pass "
        "to wait_for_video if it takes longer than the wait limit. Quote first; call it once per video: an "
        "identical request that is already paid for is followed, not paid again."
    )
    args_schema: ArgsSchema | None = VideoRequestArgs

    def _plan(self, ctx: ImagineContext, fields: dict[str, Any]) -> Plan:
        with _errors(paid=False):
            plan = plan_request(VideoRequestArgs.model_validate(fields), ctx, human=current_approval())
        if plan.refusal:
            _fail(plan.refusal, paid=False)
        return plan

    def _report(
        self, ctx: ImagineContext, plan: Plan, outcome: GenerationOutcome, body: dict[str, Any], budget: BudgetReport
    ) -> str:
        payer = outcome.payment.payer if outcome.payment else ctx.service.address
        body["paid"] = _paid(outcome.payment)
        if outcome.attached:
            body["newPayment"] = False
            body["note"] = "this exact request was already paid for; the existing job was followed, nothing new paid"
        body["request"] = plan.to_json()
        coin = _coin(plan, payer)
        if coin:
            body["coin"] = {**coin, **body.get("coin", {})}  # the result's address/symbol/chain win
        body["budgetLeft"] = _budget_left(budget)
        if outcome.warnings:  # a budget window went past 80 % / 95 %: the narration must say so
            body["budgetWarnings"] = list(outcome.warnings)
        if ctx.service.is_sandbox:
            body["sandbox"] = "embedded sandbox: no real money moved"
        return _dump(body)

    def _run(self, runtime: Runtime = None, **fields: Any) -> str:
        ctx = self._ctx(runtime)
        plan = self._plan(ctx, fields)
        progress = _Progress(runtime, self.name)
        service = ctx.service
        with _errors(paid=False), person_approval(service):  # a human's yes to this call reaches the wallet
            outcome = service.generate(plan.prompt, wait=False, **plan.options())
        progress.task_id = outcome.task_id
        progress.emit("paid", paid=_paid(outcome.payment), attached=outcome.attached)
        paid = _paid(outcome.payment)
        try:
            status = service.wait(outcome.task_id, on_progress=progress, timeout=ctx.wait_limit)
        except ImagineTimeoutError as exc:
            body = self._pending(ctx, outcome.task_id, exc)
        except ImagineError as exc:
            self._failed(outcome.task_id, exc, paid)
        else:
            downloads, problem = self._download(ctx, outcome.task_id, status)
            progress.emit("downloaded", videoPath=str(downloads.video) if downloads else None)
            body = self._delivered(ctx, outcome.task_id, status, downloads, problem)
        return self._report(ctx, plan, outcome, body, service.budget())

    async def _arun(self, runtime: Runtime = None, **fields: Any) -> str:
        ctx = self._ctx(runtime)
        plan = self._plan(ctx, fields)
        progress = _Progress(runtime, self.name)
        service = ctx.service
        with _errors(paid=False), person_approval(service):  # a human's yes to this call reaches the wallet
            outcome = await service.agenerate(plan.prompt, wait=False, **plan.options())
        progress.task_id = outcome.task_id
        progress.emit("paid", paid=_paid(outcome.payment), attached=outcome.attached)
        paid = _paid(outcome.payment)
        try:
            status = await service.await_task(outcome.task_id, on_progress=progress, timeout=ctx.wait_limit)
        except ImagineTimeoutError as exc:
            body = self._pending(ctx, outcome.task_id, exc)
        except ImagineError as exc:
            self._failed(outcome.task_id, exc, paid)
        else:
            downloads, problem = await asyncio.to_thread(self._download, ctx, outcome.task_id, status)
            progress.emit("downloaded", videoPath=str(downloads.video) if downloads else None)
            body = self._delivered(ctx, outcome.task_id, status, downloads, problem)
        return self._report(ctx, plan, outcome, body, await service.abudget())


def _recorded_payment(service: ImagineService, task_id: str) -> dict[str, Any] | None:
    """What the ledger says was paid for a task (None: not paid from this ledger)."""
    task = service.task_record(task_id)
    if task is None or task.payment_id is None:
        return None
    record = service.payment_record(task.payment_id)
    if record is None:
        return None
    return {
        **usdc_fields(record.amount),
        "network": record.network,
        "payTo": record.pay_to,
        "payer": record.payer,
        "transaction": record.transaction,
        "state": record.state.value,
    }


class WaitForVideoTool(_WaitingTool):
    name: str = "wait_for_video"
    description: str = (
        "Keep waiting for a video that generate_video started (by its taskId), then download it. Pays nothing. "
        "Use it when generate_video returned status still_running."
    )
    args_schema: ArgsSchema | None = WaitArgs

    def _finish(self, ctx: ImagineContext, task_id: str, body: dict[str, Any]) -> str:
        body["paid"] = _recorded_payment(ctx.service, task_id)
        return _dump(body)

    def _run(self, task_id: str, download: bool = True, runtime: Runtime = None) -> str:
        ctx = self._ctx(runtime)
        progress = _Progress(runtime, self.name)
        progress.task_id = task_id
        try:
            status = ctx.service.wait(task_id, on_progress=progress, timeout=ctx.wait_limit)
        except ImagineTimeoutError as exc:
            return self._finish(ctx, task_id, self._pending(ctx, task_id, exc))
        except ImagineError as exc:
            self._failed(task_id, exc, _recorded_payment(ctx.service, task_id))
        downloads, problem = self._download(ctx, task_id, status) if download else (None, None)
        return self._finish(ctx, task_id, self._delivered(ctx, task_id, status, downloads, problem))

    async def _arun(self, task_id: str, download: bool = True, runtime: Runtime = None) -> str:
        ctx = self._ctx(runtime)
        progress = _Progress(runtime, self.name)
        progress.task_id = task_id
        try:
            status = await ctx.service.await_task(task_id, on_progress=progress, timeout=ctx.wait_limit)
        except ImagineTimeoutError as exc:
            return self._finish(ctx, task_id, self._pending(ctx, task_id, exc))
        except ImagineError as exc:
            self._failed(task_id, exc, _recorded_payment(ctx.service, task_id))
        if download:
            downloads, problem = await asyncio.to_thread(self._download, ctx, task_id, status)
        else:
            downloads, problem = None, None
        return self._finish(ctx, task_id, self._delivered(ctx, task_id, status, downloads, problem))


class VideoStatusTool(ImagineTool):
    name: str = "video_status"
    description: str = (
        "Check a video's status once by its taskId (queued, processing with progress, completed with links, "
        "failed). Pays nothing. Do not call it in a loop: use wait_for_video to wait."
    )
    args_schema: ArgsSchema | None = TaskArgs

    def _run(self, task_id: str, runtime: Runtime = None) -> str:
        ctx = self._ctx(runtime)
        with _errors(taskId=task_id):
            return _dump(_status_json(task_id, ctx.service.status(task_id)))

    async def _arun(self, task_id: str, runtime: Runtime = None) -> str:
        ctx = self._ctx(runtime)
        with _errors(taskId=task_id):
            return _dump(_status_json(task_id, await ctx.service.astatus(task_id)))


class BudgetStatusTool(ImagineTool):
    name: str = "budget_status"
    description: str = (
        "The wallet's budget: spent, reserved, unknown (sent but unconfirmed), what is left under each cap, the "
        "approval threshold and the autoClank policy. Caps are set by the operator; this tool only reads them."
    )
    args_schema: ArgsSchema | None = BudgetArgs

    def _json(self, ctx: ImagineContext, report: BudgetReport) -> str:
        t, c = report.totals, report.caps

        return _dump(
            {
                "wallet": report.address,
                **usdc_fields(t.spent, "spent"),
                **usdc_fields(t.reserved, "reserved"),
                **usdc_fields(t.unknown, "unknown"),
                "left": _budget_left(report),
                "caps": {
                    **usdc_fields(c.per_call, "perCall"),
                    **usdc_fields(c.daily, "daily"),
                    **usdc_fields(c.total, "total"),
                    **usdc_fields(c.session, "session"),
                },
                **usdc_fields(report.approval_threshold, "approvalThreshold"),
                "autoClankPolicy": ctx.policy,
                "sandbox": ctx.service.is_sandbox,
            }
        )

    def _run(self, runtime: Runtime = None) -> str:
        ctx = self._ctx(runtime)
        with _errors():
            return self._json(ctx, ctx.service.budget())

    async def _arun(self, runtime: Runtime = None) -> str:
        ctx = self._ctx(runtime)
        with _errors():
            return self._json(ctx, await ctx.service.abudget())


def imagine_tools(context: ImagineContext | None = None) -> list[BaseTool]:
    """All five tools. ``context`` is a fallback for use outside an agent; in an agent the run's
    ``ImagineContext`` (``context=`` of ``invoke``/``stream``) is used."""
    return [
        QuoteVideoTool(context=context),
        GenerateVideoTool(context=context),
        WaitForVideoTool(context=context),
        VideoStatusTool(context=context),
        BudgetStatusTool(context=context),
    ]
