"""What the ledger stores: payment states and their legal transitions, the records it returns, the operator caps.

Plain values, no SQL: the interface (``base.py``) and both engines speak in these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypedDict

from ..errors import ConfigurationError

FINISHED_TASK_STATUSES = ("completed", "failed", "not_found")
_MAX_INT64 = 2**63 - 1


class PaymentState(StrEnum):
    RESERVED = "reserved"
    PAID = "paid"
    REJECTED = "rejected"
    RELEASED = "released"
    UNKNOWN = "unknown"
    PENDING = "pending"
    CANCELLED = "cancelled"


_TRANSITIONS: dict[PaymentState, frozenset[PaymentState]] = {
    PaymentState.RESERVED: frozenset(
        {PaymentState.PAID, PaymentState.REJECTED, PaymentState.UNKNOWN, PaymentState.PENDING, PaymentState.RELEASED}
    ),
    PaymentState.REJECTED: frozenset(
        {PaymentState.RELEASED, PaymentState.PAID, PaymentState.UNKNOWN, PaymentState.CANCELLED}
    ),
    PaymentState.UNKNOWN: frozenset(
        {PaymentState.PAID, PaymentState.RELEASED, PaymentState.PENDING, PaymentState.CANCELLED}
    ),
    PaymentState.PENDING: frozenset(
        {PaymentState.PAID, PaymentState.UNKNOWN, PaymentState.RELEASED, PaymentState.CANCELLED}
    ),
}


@dataclass(frozen=True)
class Caps:
    """Operator caps in atomic USDC units (``rate_per_minute`` in payments); ``None`` means no cap.

    They come from configuration and flags, never from tool arguments (rule 5).
    """

    per_call: int
    daily: int | None = None  # rolling 24 h
    total: int | None = None
    session: int | None = None
    rate_per_minute: int | None = None

    def __post_init__(self) -> None:
        for name in ("per_call", "daily", "total", "session", "rate_per_minute"):
            value = getattr(self, name)
            if value is None and name != "per_call":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_INT64:
                raise ConfigurationError(f"cap {name} must be a whole number from 0 to 2**63-1, got {value!r}")


@dataclass(frozen=True)
class PaymentRecord:
    """One row of the payment journal."""

    id: str
    request_hash: str
    state: PaymentState
    amount: int
    asset: str
    network: str
    pay_to: str
    payer: str
    resource: str
    session_id: str | None
    nonce: str | None
    valid_before: int | None
    # The signed X-PAYMENT, journaled BEFORE it is sent. A bearer instrument, so kept out of reprs.
    header: str | None = field(repr=False)
    task_id: str | None
    transaction: str | None
    reason: str | None
    created_at: float
    updated_at: float
    # Where the header went (scheme://host[:port]; "" on rows older than schema 3) and whether that was a
    # sandbox. Sandbox payments count only against the sandbox windows of the caps (money-safety rule 8).
    origin: str = ""
    sandbox: bool = False


@dataclass(frozen=True)
class TaskRecord:
    """A generation task, kept so ``wait ID`` and crash recovery can resume it."""

    task_id: str
    payment_id: str | None
    request_hash: str | None
    prompt: str | None
    status: str
    progress: float | None
    video_url: str | None
    preview_url: str | None
    video_path: str | None
    result_json: str | None
    created_at: float
    updated_at: float
    # What the poller learns from (migration 5): which API, model and duration, and the bracket of the
    # end: last seen unfinished, first seen completed (the caller's clock, like created_at).
    origin: str | None = None
    model: str | None = None
    duration: float | None = None
    last_pending_at: float | None = None
    completed_at: float | None = None


class TaskFields(TypedDict, total=False):
    """The task columns ``upsert_task`` may set; a field left out keeps its stored value."""

    payment_id: str | None
    request_hash: str | None
    prompt: str | None
    status: str
    progress: float | None
    video_url: str | None
    preview_url: str | None
    video_path: str | None
    result_json: str | None
    origin: str | None
    model: str | None
    duration: float | None
    last_pending_at: float | None  # kept once set: the bracket of the first completion seen
    completed_at: float | None  # kept once set: when the task was first seen completed


@dataclass(frozen=True)
class BudgetTotals:
    """Where the budget stands. ``reserved`` includes rejected payments that could still settle."""

    spent: int
    reserved: int
    unknown: int
    daily_used: int
    total_used: int
    session_used: int | None
    remaining_daily: int | None
    remaining_total: int | None
    remaining_session: int | None
    payments_last_minute: int
    frozen: bool


class ApprovalState(StrEnum):
    """An approvals-queue entry: ``awaiting_approval`` until the operator decides; a denial is final."""

    AWAITING = "awaiting_approval"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    USED = "used"  # an approved entry a reservation consumed: one approval pays at most once


@dataclass(frozen=True)
class ApprovalRecord:
    """A payment over the approval threshold, bound to one exact request and that price or less."""

    id: str
    request_hash: str
    state: ApprovalState
    amount: int
    asset: str
    network: str
    pay_to: str
    resource: str
    description: str
    request_json: str | None  # the create body as sent (no secrets), so a later call can resume it
    requester: str
    session_id: str | None
    payment_id: str | None
    decided_by: str | None
    reason: str | None
    created_at: float
    expires_at: float
    decided_at: float | None
    # The surface through which a person decided: "cli", "langchain", "plugin", "mcp", "console", "queue"...
    surface: str | None = None


@dataclass(frozen=True)
class AuditEvent:
    """One line of the audit: a refusal (nothing signed), a budget warning, or an approvals decision."""

    id: int
    kind: str  # "refusal" | "warning" | "approval"
    code: str
    message: str
    amount: int | None
    network: str | None
    pay_to: str | None
    request_hash: str | None
    payment_id: str | None
    approval_id: str | None
    session_id: str | None
    source: str | None
    created_at: float
