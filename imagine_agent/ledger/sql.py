"""The payment ledger: reservations, payments and tasks — SQLite by default, PostgreSQL for fleets.

A budget is only safe if checking a cap and reserving the amount are one atomic step shared by every
process that can pay (money-safety rule 2), and if every signed header is journaled before it is sent
(rule 3). This module is that step and that journal. SQLite serializes writers with ``BEGIN IMMEDIATE``;
PostgreSQL with ``SELECT … FOR UPDATE`` on the singleton ``settings`` row. Every write, in both engines,
takes that one lock, so both engines behave the same: writes are short and rare, correctness first.

A payment moves through these states (anything else is a bug and raises ``ValueError``)::

    reserved  ──► paid | rejected | unknown | pending | released
    rejected  ──► released | paid | unknown | cancelled   (released only once it provably cannot settle)
    unknown   ──► paid | released | pending | cancelled   (reconciled by the operator or an RPC check)
    pending   ──► paid | unknown | released | cancelled   (the server said settlement_pending with a tx hash)

``pending``: the server accepted the payment and named a transaction that had not settled yet.
``cancelled``: the chain shows the authorization cancelled (``cancelAuthorization``): it can never settle,
so it no longer counts, but it stays visible as what it is instead of passing for a release.
Every state but ``released`` and ``cancelled`` counts against the caps. Amounts are atomic USDC units.

Every payment records the ``origin`` it paid (scheme://host:port) and whether that was a ``sandbox``. Sandbox
payments count against sandbox windows of the same caps, real ones against the real windows: demo money
never eats the real budget, and is never unlimited. The kill switch is one flag for both.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, Self, TypedDict, TypeVar, Unpack, cast
from urllib.parse import urlsplit

from ..errors import (
    ApprovalDeniedError,
    BudgetExceededError,
    ConfigurationError,
    PaymentInFlightError,
    WalletFrozenError,
)
from ..money import format_usdc

if TYPE_CHECKING:
    import psycopg

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

DAY = 86_400.0  # the "daily" cap is a rolling 24 h window
MINUTE = 60.0
BUSY_TIMEOUT = 30.0  # seconds a writer waits for another process's lock before giving up
FINISHED_TASK_STATUSES = ("completed", "failed", "not_found")
_MAX_INT64 = 2**63 - 1
_MAX_IDLE_CONNECTIONS = 8
_PG_MIGRATION_LOCK = 0x696D6167696E65  # pg_advisory_xact_lock key: "imagine" in ASCII


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


WARNING_LEVELS = (80, 95)  # percent of a window: a payment crossing one records a warning event


@dataclass(frozen=True)
class _Usage:
    spent: int
    reserved: int
    unknown: int
    daily: int
    total: int
    session: int
    last_minute: int


# ------------------------------------------------------------------------------------------ SQL, shared
# Written once with "?" placeholders; the PostgreSQL engine rewrites them to "%s". Column and table names
# interpolated into SQL below always come from these constants, never from callers.

_PAYMENT_COLUMNS = (  # same order as the PaymentRecord fields
    "id", "request_hash", "state", "amount", "asset", "network", "pay_to", "payer", "resource",
    "session_id", "nonce", "valid_before", "header", "task_id", "settlement_tx", "reason",
    "created_at", "updated_at", "origin", "sandbox",
)  # fmt: skip
_TASK_FIELDS = tuple(TaskFields.__annotations__)
_TASK_LEARNED = ("origin", "model", "duration", "last_pending_at", "completed_at")  # migration 5, at the end
_TASK_COLUMNS = (  # same order as TaskRecord
    "task_id", *(f for f in _TASK_FIELDS if f not in _TASK_LEARNED), "created_at", "updated_at", *_TASK_LEARNED,
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


class _Tx(ABC):
    """One open transaction; ``execute`` returns all rows (none for statements without a result)."""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]: ...


def _migration_1(tx: _Tx) -> None:
    """Version 1: payments (the journal), tasks, and the singleton settings row (kill switch, lock)."""
    states = "'reserved', 'paid', 'rejected', 'released', 'unknown'"  # as shipped: never derive it
    for statement in (
        f"""CREATE TABLE IF NOT EXISTS payments (
            id TEXT PRIMARY KEY,
            request_hash TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ({states})),
            amount BIGINT NOT NULL CHECK (amount > 0),
            asset TEXT NOT NULL,
            network TEXT NOT NULL,
            pay_to TEXT NOT NULL,
            payer TEXT NOT NULL,
            resource TEXT NOT NULL,
            session_id TEXT,
            nonce TEXT,
            valid_before BIGINT,
            header TEXT,
            task_id TEXT,
            settlement_tx TEXT,
            reason TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS payments_request_hash ON payments (request_hash)",
        "CREATE INDEX IF NOT EXISTS payments_state ON payments (state)",
        "CREATE INDEX IF NOT EXISTS payments_created_at ON payments (created_at)",
        # The chain settles a nonce once; a reused nonce in the journal is a bug worth refusing loudly.
        "CREATE UNIQUE INDEX IF NOT EXISTS payments_payer_nonce ON payments (payer, nonce) WHERE nonce IS NOT NULL",
        """CREATE TABLE IF NOT EXISTS tasks (
            task_id TEXT PRIMARY KEY,
            payment_id TEXT,
            request_hash TEXT,
            prompt TEXT,
            status TEXT NOT NULL DEFAULT 'queued',
            progress DOUBLE PRECISION,
            video_url TEXT,
            preview_url TEXT,
            video_path TEXT,
            result_json TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS tasks_payment_id ON tasks (payment_id)",
        "CREATE INDEX IF NOT EXISTS tasks_created_at ON tasks (created_at)",
        """CREATE TABLE IF NOT EXISTS settings (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            frozen INTEGER NOT NULL DEFAULT 0,
            frozen_reason TEXT NOT NULL DEFAULT '',
            updated_at DOUBLE PRECISION NOT NULL
        )""",
    ):
        tx.execute(statement)
    tx.execute(
        "INSERT INTO settings (id, frozen, frozen_reason, updated_at) VALUES (1, 0, '', ?) ON CONFLICT (id) DO NOTHING",
        (time.time(),),
    )


_PAYMENTS_V2 = """CREATE TABLE {name} (
    id TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('reserved', 'paid', 'rejected', 'released', 'unknown', 'pending',
                                         'cancelled')),
    amount BIGINT NOT NULL CHECK (amount > 0),
    asset TEXT NOT NULL,
    network TEXT NOT NULL,
    pay_to TEXT NOT NULL,
    payer TEXT NOT NULL,
    resource TEXT NOT NULL,
    session_id TEXT,
    nonce TEXT,
    valid_before BIGINT,
    header TEXT,
    task_id TEXT,
    settlement_tx TEXT,
    reason TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
)"""


def _migration_2(tx: _Tx) -> None:
    """Version 2: the states ``pending`` (settlement_pending with a tx hash) and ``cancelled`` (on chain).

    SQLite cannot alter a CHECK constraint, so the table is rebuilt (same columns, same order); PostgreSQL
    swaps the constraint in place.
    """
    if isinstance(tx, _SqliteTx):
        tx.execute(_PAYMENTS_V2.format(name="payments_v2"))
        tx.execute("INSERT INTO payments_v2 SELECT * FROM payments")
        tx.execute("DROP TABLE payments")
        tx.execute("ALTER TABLE payments_v2 RENAME TO payments")
        for statement in (
            "CREATE INDEX IF NOT EXISTS payments_request_hash ON payments (request_hash)",
            "CREATE INDEX IF NOT EXISTS payments_state ON payments (state)",
            "CREATE INDEX IF NOT EXISTS payments_created_at ON payments (created_at)",
            "CREATE UNIQUE INDEX IF NOT EXISTS payments_payer_nonce ON payments (payer, nonce) WHERE nonce IS NOT NULL",
        ):
            tx.execute(statement)
    else:
        tx.execute("ALTER TABLE payments DROP CONSTRAINT IF EXISTS payments_state_check")
        tx.execute(
            "ALTER TABLE payments ADD CONSTRAINT payments_state_check CHECK (state IN ('reserved', 'paid', "
            "'rejected', 'released', 'unknown', 'pending', 'cancelled'))"
        )


def _migration_approvals_audit(tx: _Tx) -> None:
    """The approvals queue (shared by every process on the ledger) and the audit of refusals and warnings."""
    audit_id = "INTEGER PRIMARY KEY" if isinstance(tx, _SqliteTx) else "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
    for statement in (
        """CREATE TABLE IF NOT EXISTS approvals (
            id TEXT PRIMARY KEY,
            request_hash TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('awaiting_approval', 'approved', 'denied', 'expired', 'used')),
            amount BIGINT NOT NULL CHECK (amount > 0),
            asset TEXT NOT NULL,
            network TEXT NOT NULL,
            pay_to TEXT NOT NULL,
            resource TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            request_json TEXT,
            requester TEXT NOT NULL,
            session_id TEXT,
            payment_id TEXT,
            decided_by TEXT,
            reason TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL,
            decided_at DOUBLE PRECISION
        )""",
        "CREATE INDEX IF NOT EXISTS approvals_request_hash ON approvals (request_hash)",
        "CREATE INDEX IF NOT EXISTS approvals_state ON approvals (state)",
        f"""CREATE TABLE IF NOT EXISTS audit (
            id {audit_id},
            kind TEXT NOT NULL,
            code TEXT NOT NULL,
            message TEXT NOT NULL,
            amount BIGINT,
            network TEXT,
            pay_to TEXT,
            request_hash TEXT,
            payment_id TEXT,
            approval_id TEXT,
            session_id TEXT,
            source TEXT,
            created_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS audit_created_at ON audit (created_at)",
        "CREATE INDEX IF NOT EXISTS audit_payment_id ON audit (payment_id)",
    ):
        tx.execute(statement)


def _migration_origin_sandbox(tx: _Tx) -> None:
    """Every payment records the origin it paid and whether that was a sandbox (money-safety rule 8).

    Rows written before this migration keep origin '' and count as real money: the safe reading.
    """
    tx.execute("ALTER TABLE payments ADD COLUMN origin TEXT NOT NULL DEFAULT ''")
    tx.execute("ALTER TABLE payments ADD COLUMN sandbox INTEGER NOT NULL DEFAULT 0 CHECK (sandbox IN (0, 1))")
    tx.execute("CREATE INDEX IF NOT EXISTS payments_sandbox ON payments (sandbox)")


def _migration_task_timing(tx: _Tx) -> None:
    """Tasks record their API origin, model and duration, and when they were last seen unfinished and
    first seen completed: the completion-time history the poller aims from (``history.py``)."""
    for statement in (
        "ALTER TABLE tasks ADD COLUMN origin TEXT",
        "ALTER TABLE tasks ADD COLUMN model TEXT",
        "ALTER TABLE tasks ADD COLUMN duration DOUBLE PRECISION",
        "ALTER TABLE tasks ADD COLUMN last_pending_at DOUBLE PRECISION",
        "ALTER TABLE tasks ADD COLUMN completed_at DOUBLE PRECISION",
        "CREATE INDEX IF NOT EXISTS tasks_kind ON tasks (origin, model, duration, completed_at)",
    ):
        tx.execute(statement)


def _migration_approval_surface(tx: _Tx) -> None:
    """Every approval names the surface a person decided through (rule 5); older rows keep NULL."""
    tx.execute("ALTER TABLE approvals ADD COLUMN surface TEXT")


# Append only: migration i takes the schema from version i to version i + 1. Never edit a shipped one.
_MIGRATIONS: list[Callable[[_Tx], None]] = [_migration_1, _migration_2, _migration_approvals_audit,
                                            _migration_origin_sandbox, _migration_task_timing,
                                            _migration_approval_surface]
SCHEMA_VERSION = len(_MIGRATIONS)


def _migrate(tx: _Tx) -> None:
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
    )
    current = int(tx.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0])
    if current > len(_MIGRATIONS):
        raise ConfigurationError(
            f"the ledger has schema version {current}, newer than this imagine-agent understands "
            f"({len(_MIGRATIONS)}): upgrade imagine-agent before using this ledger"
        )
    for version in range(current + 1, len(_MIGRATIONS) + 1):
        _MIGRATIONS[version - 1](tx)
        tx.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, time.time()))


# ---------------------------------------------------------------------------------------- the interface


class Ledger(ABC):
    """The payment journal and budget. Thread-safe and safe across processes sharing one store.

    Synchronous: async callers use ``asyncio.to_thread``.
    """

    @abstractmethod
    def reserve(
        self,
        *,
        request_hash: str,
        amount: int,
        asset: str,
        network: str,
        pay_to: str,
        payer: str,
        resource: str,
        caps: Caps,
        session_id: str | None = None,
        now: float | None = None,
        approval_id: str | None = None,
        exclusive: bool = False,
        origin: str = "",
        sandbox: bool = False,
        chain_decides: bool = False,
    ) -> PaymentRecord:
        """Atomically check every cap and reserve ``amount``, before anything is signed.

        With ``approval_id``, the same transaction checks that the operator approved this request at this
        price or more and that the approval is unexpired and unused, and marks it used.
        Crossing 80 % / 95 % of a window records a ``warning`` audit event bound to the new payment.
        ``exclusive`` (what ``Wallet.authorize`` passes unless told ``new``): refuses with
        ``PaymentInFlightError`` while a signed payment for ``request_hash`` is reserved, unknown, pending
        or rejected-but-unexpired: attach-or-pay is decided here, under the lock.
        ``sandbox`` payments are checked against the sandbox windows of the same caps, real ones against
        the real windows: a demo never eats the real budget, and is never unlimited either.
        """

    @abstractmethod
    def journal_authorization(
        self, payment_id: str, *, nonce: str, valid_before: int, header: str, exclusive: bool = False,
        chain_decides: bool = False,
    ) -> None:
        """Record the signed header of a reservation; call it before the header is sent.

        ``exclusive``: refuses (``PaymentInFlightError``) when another payment for the same request was
        journaled first (two signers raced past ``reserve``): the first to journal is the one that is sent.
        """

    @abstractmethod
    def release_unsigned(self, payment_id: str, *, reason: str) -> bool:
        """Release a reservation only while no header is journaled: one atomic step; False if it was not."""

    @abstractmethod
    def mark_paid(self, payment_id: str, *, task_id: str | None, transaction: str | None,
                  reason: str | None = None) -> None: ...

    @abstractmethod
    def mark_rejected(self, payment_id: str, *, reason: str) -> None: ...

    @abstractmethod
    def mark_unknown(self, payment_id: str, *, reason: str) -> None: ...

    @abstractmethod
    def mark_pending(self, payment_id: str, *, transaction: str, reason: str) -> None:
        """The server accepted the payment but its settlement (``transaction``) had not confirmed: spent."""

    @abstractmethod
    def mark_cancelled(self, payment_id: str, *, reason: str) -> None:
        """The chain shows the authorization cancelled: it can never settle, so it stops counting."""

    @abstractmethod
    def release(self, payment_id: str, *, reason: str) -> None:
        """Give the amount back: only for payments that provably did not and can no longer settle."""

    @abstractmethod
    def get(self, payment_id: str) -> PaymentRecord:
        """The payment with this id; ``KeyError`` if there is none."""

    @abstractmethod
    def find_open(self, request_hash: str, *, now: float | None = None,
                  chain_decides: bool = False) -> PaymentRecord | None:
        """The newest payment for this request that a re-run must attach to instead of paying again.

        A rejected payment counts until its ``valid_before`` passes: only then is a new signature for
        the same request provably safe (money-safety rule 3). ``chain_decides`` (an RPC of the right chain
        is configured, rule 9): the clock frees nothing; it counts until reconcile releases it by the chain.
        """

    @abstractmethod
    def in_flight(self) -> list[PaymentRecord]:
        """Payments still ``reserved``, oldest first: what a restarted process must resume or report."""

    @abstractmethod
    def payments(
        self, *, limit: int | None = None, states: Collection[PaymentState] | None = None,
        sandbox: bool | None = None,
    ) -> list[PaymentRecord]:
        """Payments, newest first; ``sandbox`` True/False keeps only sandbox/real ones."""

    @abstractmethod
    def upsert_task(self, task_id: str, **fields: Unpack[TaskFields]) -> TaskRecord: ...

    @abstractmethod
    def get_task(self, task_id: str) -> TaskRecord | None: ...

    @abstractmethod
    def tasks(self, *, pending_only: bool = False, limit: int | None = None) -> list[TaskRecord]:
        """Tasks, newest first; ``pending_only`` leaves out completed, failed and not_found ones."""

    @abstractmethod
    def completion_brackets(self, origin: str, model: str, duration: float, *,
                            limit: int = 12) -> list[tuple[float, float]]:
        """The most recent completed tasks of one kind, newest first: seconds from creation to the last
        sighting unfinished (0 when none) and to the first sighting completed. Failures never count."""

    @abstractmethod
    def totals(self, caps: Caps, *, session_id: str | None = None, now: float | None = None,
               sandbox: bool = False, chain_decides: bool = False) -> BudgetTotals:
        """The real windows, or with ``sandbox`` the sandbox ones; ``frozen`` is the one kill switch."""

    @abstractmethod
    def set_frozen(self, frozen: bool, *, reason: str = "", source: str = "operator") -> None:
        """The kill switch: while frozen, no process sharing this ledger can reserve.

        Every flip is written to the audit in the same transaction, naming ``source`` (the surface).
        """

    @abstractmethod
    def is_frozen(self) -> bool: ...

    # ---- the approvals queue and the audit

    @abstractmethod
    def request_approval(
        self, *, request_hash: str, amount: int, asset: str, network: str, pay_to: str, resource: str,
        description: str, requester: str, ttl: float, request_json: str | None = None,
        session_id: str | None = None, now: float | None = None,
    ) -> ApprovalRecord:
        """The queue entry deciding this request at this price: an existing live one, else a new one awaiting.

        A denied entry is final: it is returned, never replaced, for that request. Nothing is reserved and
        nothing is signed here.
        """

    @abstractmethod
    def decide_approval(self, approval_id: str, *, approve: bool, decided_by: str, ttl: float,
                        reason: str = "", now: float | None = None) -> ApprovalRecord:
        """Approve (valid ``ttl`` seconds from now) or deny an entry still awaiting; ``ValueError`` otherwise."""

    @abstractmethod
    def record_approval(
        self, *, request_hash: str, amount: int, asset: str, network: str, pay_to: str, resource: str,
        description: str, decided_by: str, surface: str, ttl: float, request_json: str | None = None,
        session_id: str | None = None, now: float | None = None,
    ) -> ApprovalRecord:
        """Record a person's yes given outside the queue (a prompt, HITL, a callback, elicitation): an approved
        entry bound to this request, price ceiling, payee and network, for one payment to consume."""

    @abstractmethod
    def expire_approval(self, approval_id: str, *, reason: str) -> None:
        """Retire an approved entry no payment used (its payment was refused before reserving): never used later."""

    @abstractmethod
    def get_approval(self, approval_id: str) -> ApprovalRecord:
        """The entry with this id; ``KeyError`` if there is none."""

    @abstractmethod
    def find_approval(self, request_hash: str, *, now: float | None = None) -> ApprovalRecord | None:
        """The live entry (awaiting, approved or denied) deciding this request, if any."""

    @abstractmethod
    def would_refuse(self, amount: int, caps: Caps, *, session_id: str | None = None,
                     now: float | None = None, sandbox: bool = False,
                     chain_decides: bool = False) -> WalletFrozenError | BudgetExceededError | None:
        """The refusal ``reserve`` would raise right now (a preview: only ``reserve`` is atomic)."""

    @abstractmethod
    def approvals(self, *, states: Collection[ApprovalState] | None = None, limit: int | None = None,
                  now: float | None = None) -> list[ApprovalRecord]:
        """Queue entries, newest first (stale ones are shown as expired)."""

    @abstractmethod
    def record_event(self, kind: str, code: str, message: str, **fields: Any) -> AuditEvent:
        """Append one audit line (``fields``: amount, network, pay_to, request_hash, payment_id, approval_id,
        session_id, source, now)."""

    @abstractmethod
    def events(self, *, kinds: Collection[str] | None = None, payment_id: str | None = None,
               after_id: int | None = None, limit: int | None = None) -> list[AuditEvent]:
        """Audit lines, newest first (``after_id``: only newer ones, oldest first, for a live feed)."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# ------------------------------------------------------------------------------------ shared engine


_C = TypeVar("_C")


class _Pool(Generic[_C]):
    """Hands each connection to one thread at a time; keeps a few idle ones; closes all on ``close``.

    A pool rather than thread-locals, so threads that come and go (``asyncio.to_thread``) do not leave
    connections behind.
    """

    def __init__(self, connect: Callable[[], _C], close: Callable[[_C], None]) -> None:
        self._connect = connect
        self._close = close
        self._idle: list[_C] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[_C]:
        with self._lock:
            if self._closed:
                raise ValueError("this ledger is closed")
            if self._pid != os.getpid():  # forked: the parent's connections are not ours to use
                self._idle, self._pid = [], os.getpid()
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
        healthy = False
        try:
            yield conn
            healthy = True  # after an error the connection may be mid-transaction or broken: drop it
        finally:
            with self._lock:
                keep = healthy and not self._closed and len(self._idle) < _MAX_IDLE_CONNECTIONS
                if keep:
                    self._idle.append(conn)
            if not keep:
                self._close(conn)

    def close(self) -> None:
        with self._lock:
            self._closed, idle, self._idle = True, self._idle, []
        for conn in idle:
            self._close(conn)


class _SqlLedger(Ledger):
    """Everything but connections and locking, written once for both engines."""

    @abstractmethod
    def _begin(self, mode: Literal["read", "write", "schema"]) -> AbstractContextManager[_Tx]:
        """A transaction; ``write`` holds the ledger-wide write lock, ``schema`` the migration lock."""

    # ---- payments

    def reserve(
        self,
        *,
        request_hash: str,
        amount: int,
        asset: str,
        network: str,
        pay_to: str,
        payer: str,
        resource: str,
        caps: Caps,
        session_id: str | None = None,
        now: float | None = None,
        approval_id: str | None = None,
        exclusive: bool = False,
        origin: str = "",
        sandbox: bool = False,
        chain_decides: bool = False,
    ) -> PaymentRecord:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise TypeError(f"amount must be an int of atomic USDC units, got {type(amount).__name__}")
        if not 0 < amount <= _MAX_INT64:
            raise ValueError(f"amount must be a positive number of atomic USDC units, got {amount}")
        if caps.session is not None and session_id is None:
            raise ValueError("a session cap is set but no session_id was given: the cap could not apply")
        now = time.time() if now is None else now
        record = PaymentRecord(
            id=uuid.uuid4().hex, request_hash=request_hash, state=PaymentState.RESERVED, amount=amount,
            asset=asset, network=network, pay_to=pay_to, payer=payer, resource=resource,
            session_id=session_id, nonce=None, valid_before=None, header=None, task_id=None,
            transaction=None, reason=None, created_at=now, updated_at=now, origin=origin, sandbox=bool(sandbox),
        )  # fmt: skip
        refusal: WalletFrozenError | BudgetExceededError | ApprovalDeniedError | PaymentInFlightError | None
        cutoff = _cutoff(now, chain_decides)
        with self._begin("write") as tx:
            tx.execute(
                f"UPDATE payments SET state = 'released', updated_at = ?, "
                f"reason = 'rejected, and validBefore has passed: it can no longer settle' WHERE {_EXPIRED}",
                (now, cutoff),
            )
            frozen, frozen_reason = self._frozen(tx)
            if frozen:
                refusal = WalletFrozenError(
                    f"The wallet is frozen{': ' + frozen_reason if frozen_reason else ''}. Nothing was signed. "
                    "Every process sharing this ledger stopped paying; run `imagine-agent budget --unfreeze` "
                    "when it is safe."
                )
            else:
                usage = self._usage(tx, session_id, now, sandbox=bool(sandbox), cutoff=cutoff)
                open_one = self._open_signed(tx, request_hash, cutoff, exclude="") if exclusive else None
                refusal = _in_flight(open_one) if open_one else _refusal(amount, caps, usage, sandbox=bool(sandbox))
            if refusal is None and approval_id is not None:
                refusal = self._use_approval(tx, approval_id, record, now)
            if refusal is None:
                tx.execute(
                    f"INSERT INTO payments ({', '.join(_PAYMENT_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(_PAYMENT_COLUMNS))})",
                    _payment_row(record),
                )
                for code, message in _crossings(amount, caps, usage, session_id):
                    self._event(tx, "warning", code, message, amount=amount, network=network, pay_to=pay_to,
                                request_hash=request_hash, payment_id=record.id, session_id=session_id, now=now)
        if refusal is not None:
            raise refusal  # after the commit, so the auto-releases above are kept
        return record

    def journal_authorization(
        self, payment_id: str, *, nonce: str, valid_before: int, header: str, exclusive: bool = False,
        chain_decides: bool = False,
    ) -> None:
        if not (nonce and header) or isinstance(valid_before, bool) or not isinstance(valid_before, int):
            raise ValueError("journal_authorization needs a nonce, an int valid_before and the header")
        with self._begin("write") as tx:
            current = self._get(tx, payment_id)
            if current.state is not PaymentState.RESERVED:
                raise ValueError(f"payment {payment_id} is {current.state}; only a reservation can be journaled")
            cutoff = _cutoff(time.time(), chain_decides)
            first = self._open_signed(tx, current.request_hash, cutoff, exclude=payment_id) if exclusive else None
            if first is not None:
                raise _in_flight(first)
            if current.header is not None and current.header != header:
                raise ValueError(
                    f"payment {payment_id} already has a different signed header: never sign twice for one "
                    "reservation; re-send the journaled header"
                )
            reused = tx.execute(
                "SELECT id FROM payments WHERE payer = ? AND nonce = ? AND id <> ?",
                (current.payer, nonce, payment_id),
            )
            if reused:
                raise ValueError(f"nonce {nonce} is already journaled for payment {reused[0][0]}")
            self._update(tx, payment_id, nonce=nonce, valid_before=valid_before, header=header)

    def mark_paid(self, payment_id: str, *, task_id: str | None, transaction: str | None,
                  reason: str | None = None) -> None:
        with self._begin("write") as tx:
            current = self._transition(tx, payment_id, PaymentState.PAID)
            self._update(
                tx, payment_id, state=PaymentState.PAID.value,
                task_id=current.task_id if task_id is None else task_id,
                settlement_tx=current.transaction if transaction is None else transaction,
                reason=current.reason if reason is None else reason,
            )  # fmt: skip

    def mark_rejected(self, payment_id: str, *, reason: str) -> None:
        with self._begin("write") as tx:
            self._transition(tx, payment_id, PaymentState.REJECTED)
            self._update(tx, payment_id, state=PaymentState.REJECTED.value, reason=reason)

    def mark_unknown(self, payment_id: str, *, reason: str) -> None:
        with self._begin("write") as tx:
            self._transition(tx, payment_id, PaymentState.UNKNOWN)
            self._update(tx, payment_id, state=PaymentState.UNKNOWN.value, reason=reason)

    def mark_pending(self, payment_id: str, *, transaction: str, reason: str) -> None:
        if not transaction:
            raise ValueError("a pending settlement needs the transaction hash the server named")
        with self._begin("write") as tx:
            self._transition(tx, payment_id, PaymentState.PENDING)
            self._update(tx, payment_id, state=PaymentState.PENDING.value, settlement_tx=transaction, reason=reason)

    def mark_cancelled(self, payment_id: str, *, reason: str) -> None:
        if not reason.strip():
            raise ValueError("mark_cancelled needs a reason saying what the chain showed")
        with self._begin("write") as tx:
            self._transition(tx, payment_id, PaymentState.CANCELLED)
            self._update(tx, payment_id, state=PaymentState.CANCELLED.value, reason=reason)

    def release(self, payment_id: str, *, reason: str) -> None:
        if not reason.strip():
            raise ValueError("release needs a reason saying why the payment provably cannot settle")
        with self._begin("write") as tx:
            self._transition(tx, payment_id, PaymentState.RELEASED)
            self._update(tx, payment_id, state=PaymentState.RELEASED.value, reason=reason)

    def release_unsigned(self, payment_id: str, *, reason: str) -> bool:
        if not reason.strip():
            raise ValueError("release_unsigned needs a reason")
        with self._begin("write") as tx:
            current = self._get(tx, payment_id)
            if current.state is not PaymentState.RESERVED or current.header is not None:
                return False
            self._update(tx, payment_id, state=PaymentState.RELEASED.value, reason=reason)
        return True

    def get(self, payment_id: str) -> PaymentRecord:
        with self._begin("read") as tx:
            return self._get(tx, payment_id)

    def find_open(self, request_hash: str, *, now: float | None = None,
                  chain_decides: bool = False) -> PaymentRecord | None:
        columns = ", ".join(f"p.{c}" for c in _PAYMENT_COLUMNS)
        now = time.time() if now is None else now
        with self._begin("read") as tx:
            rows = tx.execute(
                f"SELECT {columns} FROM payments p LEFT JOIN tasks t ON t.task_id = p.task_id "
                "WHERE p.request_hash = ? AND (p.state IN ('reserved', 'unknown', 'pending') OR (p.state = 'paid' "
                f"AND (t.status IS NULL OR t.status NOT IN ({_FINISHED}))) "
                "OR (p.state = 'rejected' AND p.valid_before >= ?)) "
                "ORDER BY p.created_at DESC LIMIT 1",
                (request_hash, int(_cutoff(now, chain_decides))),
            )
        return _payment(rows[0]) if rows else None

    def in_flight(self) -> list[PaymentRecord]:
        with self._begin("read") as tx:
            rows = tx.execute(f"{_PAYMENTS_SELECT} WHERE state = 'reserved' ORDER BY created_at")
        return [_payment(row) for row in rows]

    def payments(
        self, *, limit: int | None = None, states: Collection[PaymentState] | None = None,
        sandbox: bool | None = None,
    ) -> list[PaymentRecord]:
        conditions, params = list[str](), list[object]()
        if states is not None:
            if not states:
                return []
            conditions.append(f"state IN ({', '.join('?' * len(states))})")
            params = [PaymentState(state).value for state in states]
        if sandbox is not None:
            conditions.append("sandbox = ?")
            params.append(int(sandbox))
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        with self._begin("read") as tx:
            rows = tx.execute(f"{_PAYMENTS_SELECT}{where} ORDER BY created_at DESC, id DESC{_limit(limit)}", params)
        return [_payment(row) for row in rows]

    # ---- tasks

    def upsert_task(self, task_id: str, **fields: Unpack[TaskFields]) -> TaskRecord:
        given = cast(dict[str, object], fields)
        unknown = sorted(set(given) - set(_TASK_FIELDS))
        if unknown:
            raise TypeError(f"upsert_task got unknown fields {unknown}; known: {list(_TASK_FIELDS)}")
        if not task_id:
            raise ValueError("upsert_task needs a task id")
        if "status" in given and not given["status"]:
            raise ValueError("a task status cannot be empty")
        if isinstance(given.get("video_path"), str) and given["video_path"]:
            # Absolute on write: the console and other processes run from other directories (rule 8).
            given = {**given, "video_path": os.path.abspath(str(given["video_path"]))}
        columns = [c for c in _TASK_FIELDS if c in given]
        now = time.time()
        updates = "".join(
            f"{c} = COALESCE(tasks.{c}, excluded.{c}), " if c in _TASK_KEPT else f"{c} = excluded.{c}, "
            for c in columns
        )
        with self._begin("write") as tx:
            tx.execute(
                f"INSERT INTO tasks (task_id, {''.join(c + ', ' for c in columns)}created_at, updated_at) "
                f"VALUES (?, {'?, ' * len(columns)}?, ?) "
                f"ON CONFLICT (task_id) DO UPDATE SET {updates}updated_at = excluded.updated_at",
                (task_id, *(given[c] for c in columns), now, now),
            )
            rows = tx.execute(f"{_TASKS_SELECT} WHERE task_id = ?", (task_id,))
        return _task(rows[0])

    def get_task(self, task_id: str) -> TaskRecord | None:
        with self._begin("read") as tx:
            rows = tx.execute(f"{_TASKS_SELECT} WHERE task_id = ?", (task_id,))
        return _task(rows[0]) if rows else None

    def tasks(self, *, pending_only: bool = False, limit: int | None = None) -> list[TaskRecord]:
        where = f" WHERE status NOT IN ({_FINISHED})" if pending_only else ""
        with self._begin("read") as tx:
            rows = tx.execute(f"{_TASKS_SELECT}{where} ORDER BY created_at DESC, task_id DESC{_limit(limit)}")
        return [_task(row) for row in rows]

    def completion_brackets(self, origin: str, model: str, duration: float, *,
                            limit: int = 12) -> list[tuple[float, float]]:
        with self._begin("read") as tx:
            rows = tx.execute(
                "SELECT last_pending_at, completed_at, created_at FROM tasks WHERE status = 'completed' "
                "AND completed_at IS NOT NULL AND origin = ? AND model = ? AND duration = ? "
                f"ORDER BY completed_at DESC{_limit(limit)}",
                (origin, model, duration),
            )
        return [(max(0.0, (pending or created) - created), done - created) for pending, done, created in rows]

    # ---- budget

    def totals(self, caps: Caps, *, session_id: str | None = None, now: float | None = None,
               sandbox: bool = False, chain_decides: bool = False) -> BudgetTotals:
        now = time.time() if now is None else now
        with self._begin("read") as tx:
            usage = self._usage(tx, session_id, now, sandbox=bool(sandbox), cutoff=_cutoff(now, chain_decides))
            frozen, _ = self._frozen(tx)
        has_session = session_id is not None
        return BudgetTotals(
            spent=usage.spent,
            reserved=usage.reserved,
            unknown=usage.unknown,
            daily_used=usage.daily,
            total_used=usage.total,
            session_used=usage.session if has_session else None,
            remaining_daily=_remaining(caps.daily, usage.daily),
            remaining_total=_remaining(caps.total, usage.total),
            remaining_session=_remaining(caps.session, usage.session) if has_session else None,
            payments_last_minute=usage.last_minute,
            frozen=frozen,
        )

    def set_frozen(self, frozen: bool, *, reason: str = "", source: str = "operator") -> None:
        with self._begin("write") as tx:
            tx.execute(
                "UPDATE settings SET frozen = ?, frozen_reason = ?, updated_at = ? WHERE id = 1",
                (int(frozen), reason if frozen else "", time.time()),
            )
            verb = "on" if frozen else "off"
            self._event(tx, "approval", "frozen" if frozen else "unfrozen",
                        f"the kill switch was turned {verb} by {source}" + (f": {reason}" if reason else ""),
                        source=source[:100])

    def is_frozen(self) -> bool:
        with self._begin("read") as tx:
            return self._frozen(tx)[0]

    # ---- the approvals queue and the audit

    def request_approval(
        self, *, request_hash: str, amount: int, asset: str, network: str, pay_to: str, resource: str,
        description: str, requester: str, ttl: float, request_json: str | None = None,
        session_id: str | None = None, now: float | None = None,
    ) -> ApprovalRecord:
        _check_approval(amount, ttl)
        now = time.time() if now is None else now
        with self._begin("write") as tx:
            self._expire_approvals(tx, now)
            rows = tx.execute(
                f"{_APPROVALS_SELECT} WHERE request_hash = ? AND state IN ('awaiting_approval', 'approved', 'denied') "
                "ORDER BY created_at DESC, id DESC LIMIT 1",
                (request_hash,),
            )
            if rows:
                found = _approval(rows[0])
                same_payee = _same_payee(found, pay_to, network)
                if found.state is ApprovalState.DENIED or (found.amount >= amount and same_payee):
                    return found
                # The price went up, or the payee or network changed: the old answer does not cover it, so the
                # operator is asked again (issue 22 d).
                why = (f"superseded: the price rose to {amount}" if same_payee
                       else f"superseded: the server now asks for {pay_to} on {network}")
                tx.execute("UPDATE approvals SET state = 'expired', reason = ? WHERE id = ?", (why[:500], found.id))
            record = ApprovalRecord(
                id=uuid.uuid4().hex[:12], request_hash=request_hash, state=ApprovalState.AWAITING, amount=amount,
                asset=asset, network=network, pay_to=pay_to, resource=resource, description=description[:500],
                request_json=request_json, requester=requester[:100], session_id=session_id, payment_id=None,
                decided_by=None, reason=None, created_at=now, expires_at=now + ttl, decided_at=None, surface="queue",
            )  # fmt: skip
            _insert_approval(tx, record)
            self._event(tx, "approval", "awaiting_approval",
                        f"{format_usdc(amount)} for {description or resource} queued for approval by {requester}",
                        amount=amount, network=network, pay_to=pay_to, request_hash=request_hash,
                        approval_id=record.id, session_id=session_id, source=requester, now=now)
        return record

    def decide_approval(self, approval_id: str, *, approve: bool, decided_by: str, ttl: float,
                        reason: str = "", now: float | None = None) -> ApprovalRecord:
        if not ttl > 0:
            raise ValueError(f"an approval's time to live must be positive, got {ttl!r}")
        now = time.time() if now is None else now
        with self._begin("write") as tx:
            self._expire_approvals(tx, now)
            current = self._get_approval(tx, approval_id)
            if current.state is not ApprovalState.AWAITING:
                raise ValueError(
                    f"approval {approval_id} is {current.state.value}; only an approval still awaiting can be decided"
                )
            state = ApprovalState.APPROVED if approve else ApprovalState.DENIED
            expires = now + ttl if approve else current.expires_at
            tx.execute(
                "UPDATE approvals SET state = ?, decided_by = ?, decided_at = ?, reason = ?, expires_at = ?, "
                "surface = ? WHERE id = ?",
                (state.value, decided_by[:100], now, reason[:500] or None, expires, decided_by[:100], approval_id),
            )
            verb = "approved" if approve else "denied"
            self._event(tx, "approval", "approved" if approve else "approval_denied",
                        f"{format_usdc(current.amount)} for {current.description or current.resource} {verb} by "
                        f"{decided_by}" + (f": {reason}" if reason else ""),
                        amount=current.amount, network=current.network, pay_to=current.pay_to,
                        request_hash=current.request_hash, approval_id=approval_id, source=decided_by, now=now)
            return self._get_approval(tx, approval_id)

    def record_approval(
        self, *, request_hash: str, amount: int, asset: str, network: str, pay_to: str, resource: str,
        description: str, decided_by: str, surface: str, ttl: float, request_json: str | None = None,
        session_id: str | None = None, now: float | None = None,
    ) -> ApprovalRecord:
        _check_approval(amount, ttl)
        now = time.time() if now is None else now
        record = ApprovalRecord(
            id=uuid.uuid4().hex[:12], request_hash=request_hash, state=ApprovalState.APPROVED, amount=amount,
            asset=asset, network=network, pay_to=pay_to, resource=resource, description=description[:500],
            request_json=request_json, requester=surface[:100], session_id=session_id, payment_id=None,
            decided_by=decided_by[:100], reason=None, created_at=now, expires_at=now + ttl, decided_at=now,
            surface=surface[:100],
        )  # fmt: skip
        with self._begin("write") as tx:
            _insert_approval(tx, record)
            self._event(tx, "approval", "approved",
                        f"{format_usdc(amount)} for {description or resource} approved by {decided_by} ({surface})",
                        amount=amount, network=network, pay_to=pay_to, request_hash=request_hash,
                        approval_id=record.id, session_id=session_id, source=decided_by[:100], now=now)
        return record

    def expire_approval(self, approval_id: str, *, reason: str) -> None:
        with self._begin("write") as tx:
            tx.execute("UPDATE approvals SET state = 'expired', reason = ? WHERE id = ? AND state = 'approved'",
                       (reason[:500], approval_id))

    def get_approval(self, approval_id: str) -> ApprovalRecord:
        with self._begin("read") as tx:
            return self._get_approval(tx, approval_id)

    def find_approval(self, request_hash: str, *, now: float | None = None) -> ApprovalRecord | None:
        now = time.time() if now is None else now
        with self._begin("read") as tx:
            rows = tx.execute(
                f"{_APPROVALS_SELECT} WHERE request_hash = ? AND (state = 'denied' OR "
                "(state IN ('awaiting_approval', 'approved') AND expires_at >= ?)) "
                "ORDER BY created_at DESC, id DESC LIMIT 1",
                (request_hash, now),
            )
        return _approval(rows[0]) if rows else None

    def would_refuse(self, amount: int, caps: Caps, *, session_id: str | None = None,
                     now: float | None = None, sandbox: bool = False,
                     chain_decides: bool = False) -> WalletFrozenError | BudgetExceededError | None:
        now = time.time() if now is None else now
        with self._begin("read") as tx:
            frozen, _ = self._frozen(tx)
            usage = self._usage(tx, session_id, now, sandbox=bool(sandbox), cutoff=_cutoff(now, chain_decides))
        if frozen:
            return WalletFrozenError("The wallet is frozen. Nothing was signed.")
        return _refusal(amount, caps, usage, sandbox=bool(sandbox))

    def approvals(self, *, states: Collection[ApprovalState] | None = None, limit: int | None = None,
                  now: float | None = None) -> list[ApprovalRecord]:
        now = time.time() if now is None else now
        where, params = "", list[object]()
        if states is not None:
            if not states:
                return []
            where = f" WHERE state IN ({', '.join('?' * len(states))})"
            params = [ApprovalState(state).value for state in states]
        with self._begin("write") as tx:  # expiring stale entries is a write
            self._expire_approvals(tx, now)
            rows = tx.execute(f"{_APPROVALS_SELECT}{where} ORDER BY created_at DESC, id DESC{_limit(limit)}", params)
        return [_approval(row) for row in rows]

    def record_event(self, kind: str, code: str, message: str, **fields: Any) -> AuditEvent:
        unknown = sorted(set(fields) - {*_AUDIT_FIELDS, "now"})
        if unknown:
            raise TypeError(f"record_event got unknown fields {unknown}")
        with self._begin("write") as tx:
            event_id = self._event(tx, kind, code, message, **fields)
            rows = tx.execute(f"{_AUDIT_SELECT} WHERE id = ?", (event_id,))
        return _audit_event(rows[0])

    def events(self, *, kinds: Collection[str] | None = None, payment_id: str | None = None,
               after_id: int | None = None, limit: int | None = None) -> list[AuditEvent]:
        clauses, params = [], list[object]()
        if kinds is not None:
            if not kinds:
                return []
            clauses.append(f"kind IN ({', '.join('?' * len(kinds))})")
            params += list(kinds)
        if payment_id is not None:
            clauses.append("payment_id = ?")
            params.append(payment_id)
        if after_id is not None:
            clauses.append("id > ?")
            params.append(int(after_id))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "ASC" if after_id is not None else "DESC"
        with self._begin("read") as tx:
            rows = tx.execute(f"{_AUDIT_SELECT}{where} ORDER BY id {order}{_limit(limit)}", params)
        return [_audit_event(row) for row in rows]

    def _get_approval(self, tx: _Tx, approval_id: str) -> ApprovalRecord:
        rows = tx.execute(f"{_APPROVALS_SELECT} WHERE id = ?", (approval_id,))
        if not rows:
            raise KeyError(f"no approval {approval_id!r} in this ledger")
        return _approval(rows[0])

    def _expire_approvals(self, tx: _Tx, now: float) -> None:
        tx.execute(
            "UPDATE approvals SET state = 'expired', reason = COALESCE(reason, 'expired undecided') "
            "WHERE state = 'awaiting_approval' AND expires_at < ?",
            (now,),
        )
        tx.execute(
            "UPDATE approvals SET state = 'expired', reason = 'approved, but not used in time' "
            "WHERE state = 'approved' AND expires_at < ?",
            (now,),
        )

    def _use_approval(self, tx: _Tx, approval_id: str, record: PaymentRecord, now: float) -> ApprovalDeniedError | None:
        """Consume an approval for this reservation, in its transaction; the refusal if it does not cover it."""
        self._expire_approvals(tx, now)
        try:
            approval = self._get_approval(tx, approval_id)
        except KeyError:
            return ApprovalDeniedError(f"approval {approval_id} does not exist. Nothing was signed.",
                                       code="approval_expired")
        if approval.state is ApprovalState.DENIED:
            return ApprovalDeniedError(f"approval {approval_id} was denied. Nothing was signed.")
        if approval.state is not ApprovalState.APPROVED:
            return ApprovalDeniedError(
                f"approval {approval_id} is {approval.state.value}, not approved. Nothing was signed. Ask again.",
                code="approval_expired")
        if approval.request_hash != record.request_hash or record.amount > approval.amount:
            return ApprovalDeniedError(
                f"approval {approval_id} covers another request or a lower price "
                f"({format_usdc(approval.amount)}). Nothing was signed.")
        if not _same_payee(approval, record.pay_to, record.network):
            return ApprovalDeniedError(
                f"approval {approval_id} was for {approval.pay_to} on {approval.network}, and the server now asks "
                f"for {record.pay_to} on {record.network}: a new approval is needed. Nothing was signed.")
        tx.execute("UPDATE approvals SET state = 'used', payment_id = ? WHERE id = ?", (record.id, approval_id))
        return None

    def _event(self, tx: _Tx, kind: str, code: str, message: str, *, now: float | None = None,
               **fields: Any) -> int:
        values = [fields.get(name) for name in _AUDIT_FIELDS]
        rows = tx.execute(
            f"INSERT INTO audit (kind, code, message, {', '.join(_AUDIT_FIELDS)}, created_at) "
            f"VALUES (?, ?, ?, {'?, ' * len(_AUDIT_FIELDS)}?) RETURNING id",
            (kind, code, message[:1000], *values, time.time() if now is None else now),
        )
        return int(rows[0][0])

    # ---- helpers (called inside a transaction)

    def _open_signed(self, tx: _Tx, request_hash: str, cutoff: float, *, exclude: str) -> PaymentRecord | None:
        """A signed payment for this request that a caller must attach to instead of paying again (rule 3).

        What ``find_open`` attaches to, decided under the write lock: reserved, unknown or pending; rejected
        until ``valid_before``; paid while its task is not known to be finished (a second identical request
        right after the first was paid attaches to that job rather than buying it again).
        """
        columns = ", ".join(f"p.{c}" for c in _PAYMENT_COLUMNS)
        rows = tx.execute(
            f"SELECT {columns} FROM payments p LEFT JOIN tasks t ON t.task_id = p.task_id "
            "WHERE p.request_hash = ? AND p.id <> ? AND p.header IS NOT NULL AND "
            "(p.state IN ('reserved', 'unknown', 'pending') OR (p.state = 'rejected' AND p.valid_before >= ?) "
            f"OR (p.state = 'paid' AND (t.status IS NULL OR t.status NOT IN ({_FINISHED})))) "
            "ORDER BY p.created_at LIMIT 1",
            (request_hash, exclude, int(cutoff)),
        )
        return _payment(rows[0]) if rows else None

    def _get(self, tx: _Tx, payment_id: str) -> PaymentRecord:
        rows = tx.execute(f"{_PAYMENTS_SELECT} WHERE id = ?", (payment_id,))
        if not rows:
            raise KeyError(f"no payment {payment_id!r} in this ledger")
        return _payment(rows[0])

    def _transition(self, tx: _Tx, payment_id: str, target: PaymentState) -> PaymentRecord:
        current = self._get(tx, payment_id)
        if target not in _TRANSITIONS.get(current.state, frozenset()):
            raise ValueError(f"payment {payment_id}: {current.state} -> {target} is not a legal transition")
        if target is not PaymentState.RELEASED and current.header is None:
            raise ValueError(
                f"payment {payment_id} has no journaled header, so nothing was sent and it cannot be {target}: "
                "release it instead"
            )
        return current

    def _update(self, tx: _Tx, payment_id: str, **columns: object) -> None:
        assignments = "".join(f"{column} = ?, " for column in columns)
        tx.execute(
            f"UPDATE payments SET {assignments}updated_at = ? WHERE id = ?",
            (*columns.values(), time.time(), payment_id),
        )

    def _usage(self, tx: _Tx, session_id: str | None, now: float, *, sandbox: bool = False,
               cutoff: float | None = None) -> _Usage:
        cutoff = now if cutoff is None else cutoff
        row = tx.execute(_USAGE_SQL, (now - DAY, session_id, now - MINUTE, cutoff, int(sandbox)))[0]
        # SUM is NULL over no rows, and NUMERIC (Decimal) for BIGINT in PostgreSQL: int() both.
        return _Usage(*(int(value or 0) for value in row))

    def _frozen(self, tx: _Tx) -> tuple[bool, str]:
        frozen, reason = tx.execute("SELECT frozen, frozen_reason FROM settings WHERE id = 1")[0]
        return bool(frozen), str(reason)


def _cutoff(now: float, chain_decides: bool) -> float:
    """Before which ``validBefore`` a rejected payment is freed by the clock: ``now``, or never (-1) when an
    RPC of the right chain decides (money-safety rule 9): then only reconcile, by the chain, releases it."""
    return -1.0 if chain_decides else now


def _refusal(amount: int, caps: Caps, usage: _Usage, *, sandbox: bool = False) -> BudgetExceededError | None:
    """The first cap ``amount`` would break, as an error that says what to do; ``None`` if all allow it."""
    window = "sandbox " if sandbox else ""
    if amount > caps.per_call:
        return BudgetExceededError(
            f"{format_usdc(amount)} would exceed the per-call cap of {format_usdc(caps.per_call)}. "
            "Nothing was signed. Raise IMAGINE_MAX_PER_CALL if you mean to pay it.",
            code="per_call_cap",
        )
    windows = (
        ("daily", caps.daily, usage.daily, "Raise IMAGINE_DAILY_CAP or wait."),
        ("total", caps.total, usage.total, "Raise IMAGINE_TOTAL_CAP."),
        ("session", caps.session, usage.session, "Raise IMAGINE_SESSION_CAP or start a new session."),
    )
    for name, cap, used, advice in windows:
        if cap is not None and amount + used > cap:
            return BudgetExceededError(
                f"{format_usdc(amount)} would exceed the {window}{name} cap of {format_usdc(cap)} "
                f"({format_usdc(used, unit=False)} used, {format_usdc(max(cap - used, 0), unit=False)} left). "
                f"Nothing was signed. {advice}",
                code=f"{name}_cap",
            )
    if caps.rate_per_minute is not None and usage.last_minute >= caps.rate_per_minute:
        return BudgetExceededError(
            f"{usage.last_minute} payments in the last minute reach the rate limit of {caps.rate_per_minute} "
            "per minute. Nothing was signed. Wait a minute or raise IMAGINE_RATE_PER_MINUTE.",
            code="rate_limit",
        )
    return None


def _crossings(amount: int, caps: Caps, usage: _Usage, session_id: str | None) -> list[tuple[str, str]]:
    """The 80 % / 95 % marks of each window that this payment (``usage`` is before it) goes past."""
    windows = [("daily", caps.daily, usage.daily), ("total", caps.total, usage.total)]
    if session_id is not None:
        windows.append(("session", caps.session, usage.session))
    found = []
    for name, cap, used in windows:
        if not cap:
            continue
        for level in WARNING_LEVELS:
            mark = cap * level  # compare in hundredths: integers, no float rounding at the boundary
            if used * 100 < mark <= (used + amount) * 100:
                spent, left = format_usdc(used + amount), format_usdc(max(cap - used - amount, 0))
                found.append((f"{name}_{level}",
                              f"the {name} budget is past {level} %: {spent} of {format_usdc(cap)} used, {left} left"))
    return found


def _check_approval(amount: int, ttl: float) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= _MAX_INT64:
        raise ValueError(f"an approval needs a positive int amount of atomic USDC units, got {amount!r}")
    if not ttl > 0:
        raise ValueError(f"an approval's time to live must be positive, got {ttl!r}")


def _insert_approval(tx: _Tx, record: ApprovalRecord) -> None:
    tx.execute(
        f"INSERT INTO approvals ({', '.join(_APPROVAL_COLUMNS)}) VALUES ({', '.join('?' * len(_APPROVAL_COLUMNS))})",
        tuple(getattr(record, c) if c != "state" else record.state.value for c in _APPROVAL_COLUMNS),
    )


def _same_payee(approval: ApprovalRecord, pay_to: str, network: str) -> bool:
    """Whether an approval was given for this payee on this network (an approval binds both: issue 22 d)."""
    return approval.pay_to.lower() == pay_to.lower() and approval.network == network


def _approval(row: Sequence[Any]) -> ApprovalRecord:
    values = list(row)
    values[2] = ApprovalState(values[2])
    return ApprovalRecord(*values)


def _audit_event(row: Sequence[Any]) -> AuditEvent:
    return AuditEvent(*row)


def _in_flight(record: PaymentRecord) -> PaymentInFlightError:
    return PaymentInFlightError(
        f"a payment for this exact request is already {record.state.value} ({format_usdc(record.amount)}, "
        f"payment {record.id}{f', task {record.task_id}' if record.task_id else ''}), so no second one was "
        "signed. Wait for it, check it with `imagine-agent receipts` / `imagine-agent reconcile`, or ask for a "
        "new video on purpose (--new, new=True).",
        payment_id=record.id,
        state=record.state.value,
    )


def _remaining(cap: int | None, used: int) -> int | None:
    return None if cap is None else max(cap - used, 0)


def _limit(limit: int | None) -> str:
    if limit is None:
        return ""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be a non-negative int, got {limit!r}")
    return f" LIMIT {limit}"


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


# ----------------------------------------------------------------------------------------------- SQLite


class _SqliteTx(_Tx):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()


class SqliteLedger(_SqlLedger):
    """A ledger in one SQLite file (WAL mode): any number of threads and processes on one machine."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        if self.path in ("", ":memory:") or self.path.startswith("file:"):
            raise ConfigurationError("a SQLite ledger needs a file path: an in-memory ledger protects no money")
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        if not os.path.exists(self.path):  # signed headers live here: readable by this user only
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._pool: _Pool[sqlite3.Connection] = _Pool(self._connect, sqlite3.Connection.close)
        with self._begin("schema") as tx:
            _migrate(tx)

    def __repr__(self) -> str:
        return f"SqliteLedger(path={self.path!r})"

    def _connect(self) -> sqlite3.Connection:
        # Autocommit mode: this class issues BEGIN/COMMIT itself. `timeout` is SQLite's busy_timeout.
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode = WAL")  # readers never block the writer
            conn.execute("PRAGMA synchronous = FULL")  # a committed reservation survives power loss
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def _begin(self, mode: Literal["read", "write", "schema"]) -> Iterator[_Tx]:
        # BEGIN IMMEDIATE takes the write lock up front, so the reads that check a cap and the insert
        # that reserves are one step no other process can interleave with.
        with self._pool.connection() as conn:
            conn.execute("BEGIN" if mode == "read" else "BEGIN IMMEDIATE")
            try:
                yield _SqliteTx(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        self._pool.close()


# ------------------------------------------------------------------------------------------- PostgreSQL


class _PgTx(_Tx):
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        cursor = self._conn.execute(sql.replace("?", "%s"), params)
        return cursor.fetchall() if cursor.description is not None else []


class PostgresLedger(_SqlLedger):
    """A ledger in PostgreSQL: one budget shared by every process on every machine of a fleet."""

    def __init__(self, url: str) -> None:
        location = parse_ledger_url(url)
        if location.engine != "postgres":
            raise ConfigurationError("PostgresLedger needs a postgresql:// URL")
        try:
            import psycopg
        except ImportError:
            raise ConfigurationError(
                "a PostgreSQL ledger needs psycopg: pip install 'imagine-agent[postgres]'"
            ) from None
        self._psycopg = psycopg
        self._url = location.target
        self.display = location.display
        self._pool: _Pool[psycopg.Connection[Any]] = _Pool(self._connect, psycopg.Connection.close)
        try:
            with self._begin("schema") as tx:
                _migrate(tx)
        except psycopg.OperationalError as exc:
            self._pool.close()
            from ..redact import redact_text

            password = urlsplit(url).password
            shown = redact_text(str(exc), url).replace(password, "***") if password else redact_text(str(exc), url)
            raise ConfigurationError(f"cannot open the PostgreSQL ledger at {self.display}: {shown}") from None

    def __repr__(self) -> str:
        return f"PostgresLedger({self.display!r})"

    def _connect(self) -> psycopg.Connection[Any]:
        conn = self._psycopg.connect(self._url, autocommit=True, connect_timeout=10)
        # READ COMMITTED, whatever the server default: each statement after the lock sees every
        # reservation committed before it. Under REPEATABLE READ the snapshot could predate the lock.
        conn.isolation_level = self._psycopg.IsolationLevel.READ_COMMITTED
        return conn

    @contextmanager
    def _begin(self, mode: Literal["read", "write", "schema"]) -> Iterator[_Tx]:
        with self._pool.connection() as conn, conn.transaction():
            tx = _PgTx(conn)
            if mode == "write":
                tx.execute("SELECT id FROM settings WHERE id = 1 FOR UPDATE")
            elif mode == "schema":  # concurrent openers must not race CREATE TABLE IF NOT EXISTS
                tx.execute("SELECT pg_advisory_xact_lock(?)", (_PG_MIGRATION_LOCK,))
            yield tx

    def close(self) -> None:
        self._pool.close()


# -------------------------------------------------------------------------------------------- locations


@dataclass(frozen=True)
class LedgerLocation:
    """Where a ledger lives. ``target`` may hold a password, so only ``display`` is ever shown."""

    engine: Literal["sqlite", "postgres"]
    target: str = field(repr=False)  # the SQLite file path, or the PostgreSQL URL as given
    display: str


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def parse_ledger_url(url_or_path: str | os.PathLike[str]) -> LedgerLocation:
    """``postgresql://…`` / ``postgres://…``, ``sqlite:///path`` (SQLAlchemy style), or a plain file path.

    Error messages never repeat the URL: it may contain a password.
    """
    raw = os.fspath(url_or_path)
    if not isinstance(raw, str) or not raw:
        raise ConfigurationError("the ledger location is empty: give a file path or a postgresql:// URL")
    if "\x00" in raw:
        raise ConfigurationError("the ledger location contains a NUL character")
    match = _SCHEME.match(raw)
    if match is None or len(match.group(1)) == 1:  # no scheme, or a Windows drive letter
        path = os.path.expanduser(raw)
        return LedgerLocation("sqlite", path, path)
    scheme = match.group(1).lower()
    if scheme in ("postgresql", "postgres"):
        return LedgerLocation("postgres", raw, _postgres_display(raw))
    if scheme == "sqlite":
        rest = raw[match.end() :]
        if not rest.startswith("/") or len(rest) == 1:
            raise ConfigurationError("a SQLite ledger URL is sqlite:///relative/path or sqlite:////absolute/path")
        path = os.path.expanduser(rest[1:])
        return LedgerLocation("sqlite", path, path)
    raise ConfigurationError(
        f"unsupported ledger URL scheme {scheme!r}: use a file path, sqlite:///path or postgresql://…"
    )


def _postgres_display(url: str) -> str:
    """The URL without password or query: user, host, port and database only."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigurationError("the PostgreSQL ledger URL is malformed (check the host and port)") from None
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    user = f"{parts.username}@" if parts.username else ""
    return f"postgresql://{user}{host}{'' if port is None else f':{port}'}{parts.path}"


def open_ledger(url_or_path: str | os.PathLike[str]) -> Ledger:
    """Open (creating and migrating if needed) the ledger at a file path or a PostgreSQL URL."""
    location = parse_ledger_url(url_or_path)
    if location.engine == "postgres":
        return PostgresLedger(location.target)
    return SqliteLedger(location.target)
