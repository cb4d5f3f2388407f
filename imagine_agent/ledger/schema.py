"""The ledger's schema: its migrations, applied in order inside the opener's schema transaction.

Both engines run the same migrations; where their SQL differs a migration asks ``tx.dialect``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

from ..errors import ConfigurationError


class _Tx(ABC):
    """One open transaction; ``execute`` returns all rows (none for statements without a result)."""

    dialect: ClassVar[Literal["sqlite", "postgres"]]  # for the few statements the two engines write differently

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
    if tx.dialect == "sqlite":
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
    audit_id = "INTEGER PRIMARY KEY" if tx.dialect == "sqlite" else "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
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
