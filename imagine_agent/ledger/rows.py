"""The SQL text and the row <-> record mapping the shared engine (``sql.py``) uses for both databases.

Written once with "?" placeholders; the PostgreSQL engine rewrites them to "%s". Column and table names
interpolated into SQL always come from these constants, never from callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .records import (
    FINISHED_TASK_STATUSES,
    ApprovalRecord,
    ApprovalState,
    AuditEvent,
    PaymentRecord,
    PaymentState,
    TaskFields,
    TaskRecord,
)

_PAYMENT_COLUMNS = (  # same order as the PaymentRecord fields
    "id", "request_hash", "state", "amount", "asset", "network", "pay_to", "payer", "resource",
    "session_id", "nonce", "valid_before", "header", "task_id", "settlement_tx", "reason",
    "created_at", "updated_at", "origin", "sandbox",
)  # fmt: skip
_TASK_FIELDS = tuple(TaskFields.__annotations__)
_TASK_LEARNED = ("origin", "model", "duration", "last_pending_at", "completed_at")  # migration 5, at the end
_TASK_COLUMNS = (  # same order as TaskRecord
    "task_id",
    *(f for f in _TASK_FIELDS if f not in _TASK_LEARNED),
    "created_at",
    "updated_at",
    *_TASK_LEARNED,
)
_TASK_KEPT = ("last_pending_at", "completed_at")  # first value wins: when the task was first seen done
_PAYMENTS_SELECT = f"SELECT {', '.join(_PAYMENT_COLUMNS)} FROM payments"
_APPROVAL_COLUMNS = tuple(ApprovalRecord.__dataclass_fields__)
_APPROVALS_SELECT = f"SELECT {', '.join(_APPROVAL_COLUMNS)} FROM approvals"
_AUDIT_FIELDS = ("amount", "network", "pay_to", "request_hash", "payment_id", "approval_id", "session_id", "source")
_AUDIT_SELECT = f"SELECT id, kind, code, message, {', '.join(_AUDIT_FIELDS)}, created_at FROM audit"
_TASKS_SELECT = f"SELECT {', '.join(_TASK_COLUMNS)} FROM tasks"
_FINISHED = ", ".join(f"'{status}'" for status in FINISHED_TASK_STATUSES)

# A rejected payment whose validBefore has passed can no longer settle: it no longer counts. The parameter
# is the cutoff (``_cutoff``): the clock's now, or -1 when the chain decides (rule 9), which frees nothing.
_EXPIRED = "(state = 'rejected' AND valid_before IS NOT NULL AND valid_before < ?)"

_USAGE_SQL = f"""
SELECT
    SUM(CASE WHEN state = 'paid' THEN amount ELSE 0 END),
    SUM(CASE WHEN state IN ('reserved', 'rejected') THEN amount ELSE 0 END),
    SUM(CASE WHEN state IN ('unknown', 'pending') THEN amount ELSE 0 END),
    SUM(CASE WHEN created_at > ? THEN amount ELSE 0 END),
    SUM(amount),
    SUM(CASE WHEN session_id = ? THEN amount ELSE 0 END),
    SUM(CASE WHEN created_at > ? THEN 1 ELSE 0 END)
FROM payments
WHERE state NOT IN ('released', 'cancelled') AND NOT {_EXPIRED} AND sandbox = ?
"""


def _approval(row: Sequence[Any]) -> ApprovalRecord:
    values = list(row)
    values[2] = ApprovalState(values[2])
    return ApprovalRecord(*values)


def _audit_event(row: Sequence[Any]) -> AuditEvent:
    return AuditEvent(*row)


def _payment(row: Sequence[Any]) -> PaymentRecord:
    values = list(row)
    values[2] = PaymentState(values[2])
    values[-1] = bool(values[-1])  # sandbox is stored as 0/1
    return PaymentRecord(*values)


def _payment_row(record: PaymentRecord) -> tuple[object, ...]:
    values = [getattr(record, "transaction" if c == "settlement_tx" else c) for c in _PAYMENT_COLUMNS]
    values[2] = record.state.value  # the plain str: psycopg would dump an Enum by its name
    values[-1] = int(record.sandbox)
    return tuple(values)


def _task(row: Sequence[Any]) -> TaskRecord:
    return TaskRecord(*row)
