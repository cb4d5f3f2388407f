"""A person's approval over MCP: what must be approved (``HumanAsk``), the plan ``generate_video`` pays for,
the elicitation question and its answer, and where a call goes when no person can be asked (the
operator's approvals queue: ``awaiting_approval``, nothing signed).
"""

from __future__ import annotations

import contextvars
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import AcceptedElicitation, Context, Elicit, ElicitationResult
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from ..config import Settings
from ..errors import AwaitingApprovalError
from ..money import format_usdc

if TYPE_CHECKING:
    from ..client import Quote
    from ..service import ImagineService

__all__ = ["HumanAsk", "no_human_to_ask"]


@dataclass(frozen=True)
class HumanAsk:
    """What a person must approve before a call may pay: a price over the threshold, and/or a coin."""

    tool: str
    prompt: str
    amount: int
    over_threshold: bool
    coin: bool

    def describe(self) -> str:
        parts = []
        if self.over_threshold:
            parts.append(f"a payment of {format_usdc(self.amount)}, over the operator's approval threshold")
        if self.coin:
            parts.append("deploying a coin for the video under the operator's autoClank=ask policy")
        return " and ".join(parts)


class _PaymentDecision(BaseModel):
    approve: bool = Field(description="Pay for this video")


class _CoinDecision(BaseModel):
    approve: bool = Field(description="Make and pay for this video")
    deploy_coin: bool = Field(description="Also deploy a coin for it (the paying wallet becomes its creator)")


def _queue_approvals(service: ImagineService) -> None:
    """No human behind MCP but an elicited one: what no person approved in this call goes to the operator's queue.

    The wallet keeps its one approver; a person's yes over elicitation reaches it as a value
    (``ImagineService.approved_by_person``), recorded in the ledger with the client's name.
    """
    service.queue_approvals("mcp")


def _client_name(ctx: Context) -> str:
    """Who answered an elicitation: ``mcp:`` and the name the client gave in ``clientInfo`` (shown, never trusted)."""
    try:
        params = ctx.session.client_params
        info = params.client_info if params is not None else None
        name = f"{info.name} {info.version}".strip() if info is not None else ""
    except Exception:  # an anonymous stateless request: no clientInfo
        name = ""
    name = re.sub(r"[^\w .:/@+-]", "?", name)[:80]
    return f"mcp:{name or 'unnamed client'}"


def _can_elicit(ctx: Context, settings: Settings | None = None) -> bool:
    """Whether a person may be asked over elicitation: the client declared form elicitation (a bare
    ``elicitation: {}`` counts, as the SDK counts it) and the operator did not send MCP approvals to the queue."""
    if settings is not None and settings.mcp_approvals == "queue":
        return False
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


@dataclass(frozen=True)
class _Plan:
    """What ``generate_video`` will pay for, decided before its body runs: price shown, coin, who must approve."""

    amount: int
    coin: bool
    ask: HumanAsk | None = None  # a person must approve this
    refusal: str | None = None
    refusal_code: str | None = None
    quote: Quote | None = None  # what the person is shown: price ceiling, payee, network

    def question(self) -> Elicit[Any]:
        assert self.ask is not None
        text = (
            f"imagine-agent asks your approval for {self.ask.describe()}.\nVideo: {self.ask.prompt!r}\n"
            f"Price: {format_usdc(self.amount)} (nothing is paid unless you approve)."
        )
        return Elicit(text, _CoinDecision if self.ask.coin else _PaymentDecision)


_PLAN: contextvars.ContextVar[_Plan | None] = contextvars.ContextVar("imagine_mcp_plan", default=None)
"""The plan the approval resolver made for the call running in this context (its body reads it)."""


def no_human_to_ask(plan: _Plan) -> _Plan:
    """Where a call that needs a person goes when this MCP client cannot ask one (no elicitation).

    It is paid for without a person's yes, so the wallet's approver (``_McpApprover``, the approvals queue)
    records it as ``awaiting_approval`` and refuses it, nothing signed; the call answers ``awaiting_approval``
    with the approval's id. The one place to change if such calls should be refused outright instead.
    """
    return plan


def _approved_plan(plan: _Plan | None, answer: ElicitationResult[Any], can_ask: bool) -> tuple[_Plan, bool]:
    """The plan to pay for after the person's answer, and whether a person approved it over elicitation.

    Raises ToolError (nothing signed) when it may not be paid.
    """
    if plan is None:
        raise ToolError("the approval step did not run; nothing was signed or paid")
    if plan.refusal is not None:
        raise ToolError(f"Refused (code {plan.refusal_code}): {plan.refusal.rstrip('.')}. Nothing was signed or paid.")
    if plan.ask is None:
        return plan, False
    if not can_ask:
        return no_human_to_ask(plan), False
    data = answer.data if isinstance(answer, AcceptedElicitation) else None
    if not isinstance(data, _PaymentDecision | _CoinDecision) or not data.approve:
        raise ToolError(
            f"ApprovalDeniedError: the person asked did not approve {plan.ask.describe()}. Nothing was signed or paid."
        )
    coin = data.deploy_coin if isinstance(data, _CoinDecision) else plan.coin
    return _Plan(plan.amount, coin, plan.ask, quote=plan.quote), True


def _awaiting(exc: AwaitingApprovalError) -> dict[str, Any]:
    """Not a failure: the operator decides in the approvals queue; nothing was reserved or signed."""
    return {
        "status": "awaiting_approval",
        "code": exc.code,
        "approvalId": exc.approval_id,
        "message": str(exc),
        "paid": None,
        "next": f"Tell the user the payment waits for the operator's approval (approval {exc.approval_id}). Once "
        f"it is approved, call wait_for_video with task_id {exc.approval_id} to make the video (or "
        "generate_video again with the same arguments); nothing was paid.",
    }


_APPROVAL_ID = re.compile(r"^[0-9a-f]{12}$")  # the queue's ids; task ids are longer


def _is_approval(service: ImagineService, approval_id: str) -> bool:
    return service.approval(approval_id) is not None
