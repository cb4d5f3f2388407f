"""Checks against the sandbox's own settlement record (``Settlement.to_wire()`` / ``GET /_admin/settlements``)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from imagine_agent.ledger import PaymentRecord, PaymentState
from imagine_agent.models import TaskStatus

__all__ = ["count_double_paid", "count_lost", "count_phantom", "progress_regressed"]


def count_double_paid(settlements: Iterable[Mapping[str, Any]]) -> int:
    """Settlements beyond one per request (same nonce twice included), from the sandbox's own record."""
    items = list(settlements)
    return len(items) - len({s["requestHash"] for s in items})


def count_lost(settlements: Iterable[Mapping[str, Any]], payments: Iterable[PaymentRecord]) -> int:
    """Settled payments the ledger cannot account for.

    Accounted for: paid with the very taskId the sandbox made, or ``unknown`` / ``pending`` (the answer
    was lost, or named a transaction not confirmed yet; it counts as spent and is shown to the operator).
    """
    by_nonce = {p.nonce.lower(): p for p in payments if p.nonce}
    lost = 0
    for s in settlements:
        record = by_nonce.get(str(s["nonce"]).lower())
        if record is None:
            lost += 1
        elif record.state == PaymentState.PAID and record.task_id == s["taskId"]:
            continue
        elif record.state not in (PaymentState.UNKNOWN, PaymentState.PENDING):
            lost += 1
    return lost


def count_phantom(settlements: Iterable[Mapping[str, Any]], payments: Iterable[PaymentRecord]) -> int:
    """Payments the ledger shows as paid that the sandbox never settled."""
    settled = {str(s["nonce"]).lower() for s in settlements}
    return sum(1 for p in payments if p.state == PaymentState.PAID and (p.nonce or "").lower() not in settled)


def progress_regressed(updates: Sequence[TaskStatus]) -> bool:
    """True if the caller saw progress fall (or not a number), or a job go from processing back to queued."""
    best = -math.inf
    processing = False
    for status in updates:
        if status.status == "queued" and processing:
            return True
        processing = processing or status.status == "processing"
        if status.status == "processing" and status.progress is None and best > -math.inf:
            return True  # a progress bar shows "no progress" as 0
        if status.progress is not None:
            if not math.isfinite(status.progress) or status.progress < best:
                return True
            best = float(status.progress)
    return False
