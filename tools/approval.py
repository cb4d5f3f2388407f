"""Human approval of payments: which ``generate_video`` calls need a person, and passing their "yes" on.

``ApprovalGate`` asks the service's decisions, for a ``generate_video`` call, whether a human must approve
it (a quoted price over the approval threshold, a coin under ``ask``). The agent's
``HumanInTheLoopMiddleware`` pauses on exactly those calls (``when=``), and the agent marks an approved
call with ``human_approved`` while it runs. The tool hands that mark to the wallet as a value
(``person_approval``: the price shown as the ceiling, the quote's payee and network); the wallet records it
in the ledger and pays no more. A model cannot set the mark: it lives in a context variable, not in any
argument.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from imagine_agent.errors import ImagineError
from imagine_agent.money import format_usdc

from .context import HumanApproval, ImagineContext, resolve_context
from .context import current_approval as current_approval
from .context import human_approved as human_approved
from .schemas import Plan, VideoRequestArgs, plan_request

if TYPE_CHECKING:
    from imagine_agent.client import Quote
    from imagine_agent.service import ImagineService

__all__ = ["ApprovalGate", "GateDecision", "HumanApproval", "current_approval", "human_approved", "person_approval"]


@contextmanager
def person_approval(service: ImagineService) -> Iterator[None]:
    """The human approval of this call, if any, handed to the wallet as a value (recorded as ``langchain``)."""
    approval = current_approval()
    if approval is None or approval.amount is None or approval.quote is None:
        yield  # no price was shown to a person: the wallet's own approver decides
        return
    with service.approved_by_person(approval.quote, surface="langchain", approved_by="langchain-hitl"):
        yield


@dataclass(frozen=True)
class GateDecision:
    reasons: tuple[str, ...]
    amount: int | None
    coin: bool = False
    quote: Quote | None = None

    @property
    def needed(self) -> bool:
        return bool(self.reasons)

    def approval(self) -> HumanApproval:
        return HumanApproval(self.amount, self.reasons, self.quote)


class ApprovalGate:
    """Which ``generate_video`` calls need a human, decided the same way when pausing and when resuming.

    A price comes from a quote of exactly the request the call would pay for (cached, so the answer
    does not change between the pause and the resume). A call whose price cannot be learned is not
    marked approved, so the wallet's own approver still decides it.
    """

    def __init__(self, default: ImagineContext | None = None) -> None:
        self.default = default
        self._quotes: dict[tuple[str, str, str], tuple[Quote, bool]] = {}
        self._decisions: dict[str, tuple[str, GateDecision]] = {}  # call id -> (its arguments, decision)
        self._lock = threading.Lock()

    def decide(self, args: Mapping[str, Any], context: ImagineContext | None) -> GateDecision:
        try:
            ctx = resolve_context(None, context or self.default)
            parsed = VideoRequestArgs.model_validate({k: v for k, v in args.items() if k != "runtime"})
            plan = plan_request(parsed, ctx, human=None, assume_approved=True)
        except (ImagineError, ValidationError):
            return GateDecision((), None)  # the tool itself reports what is wrong; nothing is paid
        service = ctx.service
        coin = service.decide_coin(plan.auto_clank, policy=ctx.policy, assume_approved=True)
        quote = None
        if service.approval_threshold is not None:
            quote, allowed = self._price(ctx, plan)
            # Over a cap, the wallet refuses with nothing signed: there is nothing for a human to approve.
            if quote is not None and not allowed:
                quote = None
        amount = quote.amount if quote is not None else None
        person = service.person_needed(amount, coin)
        return GateDecision(person.reasons, amount, plan.auto_clank, quote)

    def _price(self, ctx: ImagineContext, plan: Plan) -> tuple[Quote | None, bool]:
        """The quote of this exact request (price, payee, network), and whether the budget allows it."""
        cache_key = (ctx.service.client.base_url, ctx.service.address, plan.key())
        with self._lock:
            if cache_key in self._quotes:
                return self._quotes[cache_key]
        try:
            quote = ctx.service.quote(plan.prompt, **plan.options())
        except ImagineError:
            return None, False
        with self._lock:
            self._quotes[cache_key] = (quote.quote, quote.allowed)
        return quote.quote, quote.allowed

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
        lines = [
            f"Pay {price} for a {length} video: {str(args.get('prompt', ''))[:300]!r}",
            "Approval is needed because " + " and ".join(decision.reasons) + ".",
        ]
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
