"""The approvals queue as a wallet approver, for surfaces with no interactive human (MCP, bots, plugins).

A payment that needs a human is recorded in the ledger as ``awaiting_approval`` (the exact request, the
price, the payee, who asked) and refused with ``AwaitingApprovalError``: nothing reserved, nothing signed.
The operator decides with ``imagine-agent approvals approve|deny ID`` or the console; every process
sharing the ledger sees the same queue. The next call of the same request then pays (the approval is
bound to that request hash and that price or less, used once, and expires); a denial is final.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .errors import ApprovalDeniedError, AwaitingApprovalError
from .ledger import ApprovalRecord, ApprovalState, Ledger
from .money import format_usdc
from .wallet import ApprovalRequest

__all__ = ["DEFAULT_APPROVAL_TTL", "QueueApprover", "approval_json"]

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
            request_hash=request.request_hash, amount=request.amount, asset=request.asset or "",
            network=request.network, pay_to=request.pay_to, resource=request.resource,
            description=request.description, requester=self.requester, ttl=self.ttl,
            request_json=request.request_json, session_id=self.session_id,
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


def approval_json(entry: ApprovalRecord) -> dict[str, object]:
    """A queue entry as scripts and the console see it (amounts as atomic-unit strings)."""

    def iso(t: float | None) -> str | None:
        return None if t is None else dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds")

    return {
        "id": entry.id, "state": entry.state.value, "amount": str(entry.amount),
        "amountUsdc": format_usdc(entry.amount, unit=False), "asset": entry.asset, "network": entry.network,
        "payTo": entry.pay_to, "description": entry.description, "requester": entry.requester,
        "requestHash": entry.request_hash, "paymentId": entry.payment_id, "decidedBy": entry.decided_by,
        "reason": entry.reason, "createdAt": iso(entry.created_at), "expiresAt": iso(entry.expires_at),
        "decidedAt": iso(entry.decided_at), "surface": entry.surface,
    }
