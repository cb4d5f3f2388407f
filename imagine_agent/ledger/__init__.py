"""The payment ledger: reservations, payments and tasks — SQLite by default, PostgreSQL for fleets.

A package since the layout step; every name stays importable from here.
"""

from .sql import _PAYMENT_COLUMNS as _PAYMENT_COLUMNS  # the ledger tests write old-format rows with it
from .sql import BUSY_TIMEOUT as BUSY_TIMEOUT
from .sql import DAY as DAY
from .sql import FINISHED_TASK_STATUSES as FINISHED_TASK_STATUSES
from .sql import MINUTE as MINUTE
from .sql import SCHEMA_VERSION as SCHEMA_VERSION
from .sql import WARNING_LEVELS as WARNING_LEVELS
from .sql import ApprovalRecord as ApprovalRecord
from .sql import ApprovalState as ApprovalState
from .sql import AuditEvent as AuditEvent
from .sql import BudgetTotals as BudgetTotals
from .sql import Caps as Caps
from .sql import Ledger as Ledger
from .sql import LedgerLocation as LedgerLocation
from .sql import PaymentRecord as PaymentRecord
from .sql import PaymentState as PaymentState
from .sql import PostgresLedger as PostgresLedger
from .sql import SqliteLedger as SqliteLedger
from .sql import TaskFields as TaskFields
from .sql import TaskRecord as TaskRecord
from .sql import open_ledger as open_ledger
from .sql import parse_ledger_url as parse_ledger_url

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
