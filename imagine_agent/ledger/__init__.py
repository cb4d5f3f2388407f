"""The payment ledger: reservations, payments and tasks — SQLite by default, PostgreSQL for fleets.

One concern per module: ``records`` (states, records, caps), ``budget`` (the cap arithmetic), ``schema``
(the migrations), ``base`` (the ``Ledger`` interface and its state diagram), ``sql`` (the engine written once),
``sqlite`` and ``postgres`` (connections and locks), ``location`` (where a ledger lives). Every name is
importable from here, as it was when this was one module.
"""

from __future__ import annotations

import os

from .base import Ledger as Ledger
from .budget import DAY as DAY
from .budget import MINUTE as MINUTE
from .budget import WARNING_LEVELS as WARNING_LEVELS
from .location import LedgerLocation as LedgerLocation
from .location import parse_ledger_url as parse_ledger_url
from .postgres import PostgresLedger as PostgresLedger
from .records import FINISHED_TASK_STATUSES as FINISHED_TASK_STATUSES
from .records import ApprovalRecord as ApprovalRecord
from .records import ApprovalState as ApprovalState
from .records import AuditEvent as AuditEvent
from .records import BudgetTotals as BudgetTotals
from .records import Caps as Caps
from .records import PaymentRecord as PaymentRecord
from .records import PaymentState as PaymentState
from .records import TaskFields as TaskFields
from .records import TaskRecord as TaskRecord
from .rows import _PAYMENT_COLUMNS as _PAYMENT_COLUMNS  # the ledger tests write old-format rows with it
from .schema import SCHEMA_VERSION as SCHEMA_VERSION
from .sqlite import BUSY_TIMEOUT as BUSY_TIMEOUT
from .sqlite import SqliteLedger as SqliteLedger

__all__ = [
    "SCHEMA_VERSION",
    "ApprovalRecord",
    "ApprovalState",
    "AuditEvent",
    "BudgetTotals",
    "Caps",
    "Ledger",
    "LedgerLocation",
    "PaymentRecord",
    "PaymentState",
    "PostgresLedger",
    "SqliteLedger",
    "TaskFields",
    "TaskRecord",
    "open_ledger",
    "parse_ledger_url",
]


def open_ledger(url_or_path: str | os.PathLike[str]) -> Ledger:
    """Open (creating and migrating if needed) the ledger at a file path or a PostgreSQL URL."""
    location = parse_ledger_url(url_or_path)
    if location.engine == "postgres":
        return PostgresLedger(location.target)
    return SqliteLedger(location.target)
