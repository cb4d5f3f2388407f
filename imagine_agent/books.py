"""Moved to ``imagine_agent.service.books``; this path keeps its names."""

from __future__ import annotations

from .service.books import BOOK_LABELS as BOOK_LABELS
from .service.books import PAYMENT_STATES as PAYMENT_STATES
from .service.books import ApprovalRecord as ApprovalRecord
from .service.books import ApprovalState as ApprovalState
from .service.books import AuditEvent as AuditEvent
from .service.books import Booked as Booked
from .service.books import Books as Books
from .service.books import BookSummary as BookSummary
from .service.books import BudgetReport as BudgetReport
from .service.books import BudgetTotals as BudgetTotals
from .service.books import Caps as Caps
from .service.books import Ledger as Ledger
from .service.books import PaymentRecord as PaymentRecord
from .service.books import PaymentState as PaymentState
from .service.books import TaskRecord as TaskRecord
from .service.books import follows_sandbox as follows_sandbox
from .service.books import reconcile_ledger as reconcile_ledger

__all__ = [
    "BOOK_LABELS",
    "PAYMENT_STATES",
    "BookSummary",
    "Booked",
    "Books",
    "BudgetReport",
    "follows_sandbox",
    "reconcile_ledger",
]
