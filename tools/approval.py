"""Human approval of payments: which ``generate_video`` calls need a person, and passing their "yes" on.

``ApprovalGate`` decides, for a ``generate_video`` call, whether a human must approve it: when its
quoted price is over the wallet's approval threshold, or when it would deploy a coin under the
``ask`` policy. The agent's ``HumanInTheLoopMiddleware`` pauses on exactly those calls (``when=``),
and the agent marks an approved call with ``human_approved`` while it runs. ``ApprovalBridge``,
installed as the wallet's approver, lets a payment through when a human approved that call at that
price or more; anything else still goes to the wallet's own approver. A model cannot set the mark:
it lives in a context variable, not in any argument.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from imagine_agent.errors import ImagineError
from imagine_agent.money import format_usdc

from .context import ImagineContext, resolve_context
from .schemas import Plan, VideoRequestArgs, plan_request

if TYPE_CHECKING:
    from imagine_agent.wallet import ApprovalRequest, Approver, Wallet

__all__ = ["ApprovalBridge", "ApprovalGate", "GateDecision", "HumanApproval", "bridge_wallet", "current_approval",
           "human_approved"]


@dataclass(frozen=True)
class HumanApproval:
    """A person approved this tool call, having been shown ``amount`` (atomic USDC; None: no price shown)."""

    amount: int | None
    reasons: tuple[str, ...] = ()


_APPROVAL: ContextVar[HumanApproval | None] = ContextVar("imagine_agent_human_approval", default=None)


def current_approval() -> HumanApproval | None:
    """The human approval of the tool call running in this context, if any."""
    return _APPROVAL.get()


@contextmanager
def human_approved(approval: HumanApproval) -> Iterator[None]:
    """Mark the code run inside as approved by a human (context-local: other calls never see it)."""
    token = _APPROVAL.set(approval)
    try:
        yield
    finally:
        _APPROVAL.reset(token)


class ApprovalBridge:
    """A wallet approver: yes when a human approved this call at this price or more, else the fallback's answer."""

    def __init__(self, fallback: Approver | None) -> None:
        self.fallback = fallback

    def __call__(self, request: ApprovalRequest) -> bool:
        approval = _APPROVAL.get()
        if approval is not None and approval.amount is not None and request.amount <= approval.amount:
            return True
        return self.fallback(request) if self.fallback is not None else False


_bridge_lock = threading.Lock()


def bridge_wallet(wallet: Wallet) -> None:
    """Install ``ApprovalBridge`` as the wallet's approver, keeping the old one as its fallback (idempotent)."""
    with _bridge_lock:
        if not isinstance(wallet.approver, ApprovalBridge):
            wallet.approver = ApprovalBridge(wallet.approver)


@dataclass(frozen=True)
class GateDecision:
    reasons: tuple[str, ...]
    amount: int | None
    coin: bool = False

    @property
    def needed(self) -> bool:
        return bool(self.reasons)

    def approval(self) -> HumanApproval:
        return HumanApproval(self.amount, self.reasons)


class ApprovalGate:
    """Which ``generate_video`` calls need a human, decided the same way when pausing and when resuming.

    A price comes from a quote of exactly the request the call would pay for (cached, so the answer
    does not change between the pause and the resume). A call whose price cannot be learned is not
    marked approved, so the wallet's own approver still decides it.
    """

    def __init__(self, default: ImagineContext | None = None) -> None:
        self.default = default
        self._quotes: dict[tuple[str, str, str], tuple[int, bool]] = {}
        self._decisions: dict[str, tuple[str, GateDecision]] = {}  # call id -> (its arguments, decision)
        self._lock = threading.Lock()

    def decide(self, args: Mapping[str, Any], context: ImagineContext | None) -> GateDecision:
        try:
            ctx = resolve_context(None, context or self.default)
            parsed = VideoRequestArgs.model_validate({k: v for k, v in args.items() if k != "runtime"})
            plan = plan_request(parsed, ctx, human=None, assume_approved=True)
        except (ImagineError, ValidationError):
            return GateDecision((), None)  # the tool itself reports what is wrong; nothing is paid
        reasons: list[str] = []
        if ctx.policy == "ask" and plan.auto_clank:
            reasons.append(f"it deploys a coin (autoClank), and the paying wallet {ctx.service.wallet.address} "
                           "becomes its creator; the operator's policy is 'ask'")
        threshold = ctx.service.wallet.policy.approval_threshold
        amount = None
        if threshold is not None:
            amount, allowed = self._price(ctx, plan)
            # Over a cap, the wallet refuses with nothing signed: there is nothing for a human to approve.
            if amount is not None and allowed and amount > threshold:
                reasons.append(f"its price {format_usdc(amount)} is over the approval threshold of "
                               f"{format_usdc(threshold)}")
        return GateDecision(tuple(reasons), amount, plan.auto_clank)

    def _price(self, ctx: ImagineContext, plan: Plan) -> tuple[int | None, bool]:
        """The quoted price of this exact request, and whether the budget allows it."""
        cache_key = (ctx.service.client.base_url, ctx.service.wallet.address, plan.key())
        with self._lock:
            if cache_key in self._quotes:
                return self._quotes[cache_key]
        try:
            quote = ctx.service.quote(plan.prompt, **plan.options())
        except ImagineError:
            return None, False
        with self._lock:
            self._quotes[cache_key] = (quote.quote.amount, quote.allowed)
        return quote.quote.amount, quote.allowed

    # ---- the HumanInTheLoopMiddleware hooks
    def when(self, request: Any) -> bool:
        """``InterruptOnConfig.when``: pause this call for a human?"""
        call = request.tool_call
        call_id = str(call.get("id") or "")
        args = call.get("args") or {}
        key = json.dumps(args, sort_keys=True, default=str)
        with self._lock:
            known = self._decisions.get(call_id) if call_id else None
        if known is not None and known[0] == key:  # asked again on resume: the same answer, whatever prices do
            return known[1].needed
        decision = self.decide(args, _context_of(request.runtime))
        if call_id:  # a model that reuses call ids across turns gets a fresh decision for new arguments
            with self._lock:
                self._decisions[call_id] = (key, decision)
        return decision.needed

    def describe(self, tool_call: Any, state: Any, runtime: Any) -> str:
        """``InterruptOnConfig.description``: what the human is asked to approve."""
        decision = self.recorded(str(tool_call.get("id") or ""))
        if decision is None:
            decision = self.decide(tool_call.get("args") or {}, _context_of(runtime))
        args = tool_call.get("args") or {}
        price = format_usdc(decision.amount) if decision.amount is not None else "an unknown amount"
        seconds = args.get("duration")
        numeric = isinstance(seconds, int | float) and not isinstance(seconds, bool)
        length = f"{seconds:g}-second" if numeric else "8-second"
        lines = [f"Pay {price} for a {length} video: {str(args.get('prompt', ''))[:300]!r}",
                 "Approval is needed because " + " and ".join(decision.reasons) + "."]
        if decision.coin:
            lines.append("A coin will be deployed: the paying wallet becomes its creator and earns its trading fees.")
        return "\n".join(lines)

    def recorded(self, tool_call_id: str | None) -> GateDecision | None:
        """The decision taken when this call was checked for approval (None: it never was)."""
        if not tool_call_id:
            return None
        with self._lock:
            known = self._decisions.get(tool_call_id)
        return known[1] if known is not None else None


def _context_of(runtime: Any) -> ImagineContext | None:
    context = getattr(runtime, "context", None)
    return context if isinstance(context, ImagineContext) else None
