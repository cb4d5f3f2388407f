"""The one per-call approval step's parts: what is asked (``ApprovalRequest``), who answers (``Approver``).

A person's yes reaches the wallet as a value (``PersonApproval``, set with ``person_approved``) or from the
wallet's one approver: an interactive prompt, a callback, or the operator's approvals queue (``QueueApprover``,
for surfaces with no interactive human: MCP, bots, plugins). ``approval_context`` says what the payments
authorized inside are for. The wallet (``Wallet._approve``) asks, records and pays no more than approved.

The queue: a payment that needs a human is recorded in the ledger as ``awaiting_approval`` (the exact request,
the price, the payee, who asked) and refused with ``AwaitingApprovalError``: nothing reserved, nothing signed.
The operator decides with ``imagine-agent approvals approve|deny ID`` or the console; every process
sharing the ledger sees the same queue. The next call of the same request then pays (the approval is
bound to that request hash and that price or less, used once, and expires); a denial is final.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ApprovalDeniedError, AwaitingApprovalError
from ..ledger import ApprovalState, Ledger
from ..money import format_usdc
from ..redact import inert

if TYPE_CHECKING:
    from ..models import PaymentRequirements

__all__ = [
    "DEFAULT_APPROVAL_TTL",
    "ApprovalRequest",
    "Approver",
    "PersonApproval",
    "QueueApprover",
    "approval_context",
    "person_approved",
]


@dataclass(frozen=True)
class ApprovalRequest:
    """What a human (or callback) is asked to approve."""

    amount: int
    pay_to: str
    network: str
    resource: str
    description: str
    request_hash: str = ""
    asset: str = ""
    request_json: str | None = None  # the create body, so a queued approval can be shown and resumed
    reasons: tuple[str, ...] = ()  # why a human is asked (over the threshold, a coin under autoClank=ask)

    def __str__(self) -> str:  # shown to a person deciding: nothing in it may move the cursor or recolour
        what = inert(self.description or self.resource)
        return f"pay {format_usdc(self.amount)} on {inert(self.network)} to {inert(self.pay_to)} for {what}"


@dataclass(frozen=True)
class _ApprovalContext:
    request_json: str | None
    reason: str | None  # set: a human must approve whatever the price (a coin under autoClank=ask)


_APPROVAL_CONTEXT: ContextVar[_ApprovalContext | None] = ContextVar("imagine_agent_approval_context", default=None)


@dataclass(frozen=True)
class PersonApproval:
    """A person approved the payment of the call running in this context, as a value (not a callback).

    Set by whichever surface asked the human (LangChain HITL, MCP elicitation), the way pydantic-ai carries
    ``RunContext.tool_call_approved``; the wallet's one approval step reads it. It covers one payment of at most
    ``amount`` atomic USDC; when ``pay_to`` / ``network`` / ``request_hash`` are set (what the person was shown),
    only that payee, network and exact request. The wallet records it in the ledger, naming ``approved_by``
    on ``surface``, before the payment consumes it.
    """

    amount: int
    surface: str
    approved_by: str = ""
    pay_to: str | None = None
    network: str | None = None
    request_hash: str | None = None

    def covers(self, requirement: PaymentRequirements, request_hash: str) -> bool:
        return (
            requirement.amount <= self.amount
            and (self.pay_to is None or self.pay_to.lower() == requirement.pay_to.lower())
            and (self.network is None or self.network == requirement.network)
            and (self.request_hash is None or self.request_hash == request_hash)
        )


_PERSON: ContextVar[PersonApproval | None] = ContextVar("imagine_agent_person_approval", default=None)


@contextmanager
def person_approved(approval: PersonApproval | None) -> Iterator[None]:
    """Mark the payment made inside as approved by a person (context-local: other calls never see it)."""
    token = _PERSON.set(approval)
    try:
        yield
    finally:
        _PERSON.reset(token)


@contextmanager
def approval_context(request_json: str | None, *, require_reason: str | None = None) -> Iterator[None]:
    """What the payments authorized inside are for: the request body, and a reason that forces approval."""
    token = _APPROVAL_CONTEXT.set(_ApprovalContext(request_json, require_reason))
    try:
        yield
    finally:
        _APPROVAL_CONTEXT.reset(token)


Approver = Callable[[ApprovalRequest], bool]
"""The wallet's one approver. An optional ``surface`` attribute names who answers (recorded with each decision);
``records_itself`` marks the queue, whose decisions are already ledger records."""


DEFAULT_APPROVAL_TTL = 3600.0


@dataclass
class QueueApprover:
    """``Approver``: yes only when the operator already approved this request; else queue it and refuse."""

    ledger: Ledger
    requester: str
    ttl: float = DEFAULT_APPROVAL_TTL
    session_id: str | None = None
    surface: str = "queue"
    records_itself: bool = True  # its answers are ledger records already (the wallet records other approvers')

    def __call__(self, request: ApprovalRequest) -> bool:
        if not request.request_hash:
            return False  # an approval must be bound to one exact request
        entry = self.ledger.request_approval(
            request_hash=request.request_hash,
            amount=request.amount,
            asset=request.asset or "",
            network=request.network,
            pay_to=request.pay_to,
            resource=request.resource,
            description=request.description,
            requester=self.requester,
            ttl=self.ttl,
            request_json=request.request_json,
            session_id=self.session_id,
        )
        if entry.state is ApprovalState.APPROVED and request.amount <= entry.amount:
            return True
        if entry.state is ApprovalState.DENIED:
            raise ApprovalDeniedError(
                f"the operator denied this request (approval {entry.id}); a denial is final. Nothing was signed."
            )
        until = dt.datetime.fromtimestamp(entry.expires_at, dt.UTC).isoformat(timespec="seconds")
        why = "; ".join(request.reasons) or "it needs approval"
        raise AwaitingApprovalError(
            f"{why}: queued as approval {entry.id} for the operator ({format_usdc(request.amount)}). Nothing was "
            f"reserved or signed. Approve it with `imagine-agent approvals approve {entry.id}` or in the console "
            f"before {until}, then ask for the same video again.",
            approval_id=entry.id,
        )
