"""The ledger's schema: named migrations, applied in order and recorded by name (as simonw/llm does).

``@migration`` appends a function to ``MIGRATIONS``; opening a ledger runs, inside the opener's schema
transaction, every one whose name the ledger has not recorded in ``schema_migrations``, and records it. A ledger
from before names (only the integer ``schema_version`` table, saying N) counts as having applied the first N.
A recorded name this code does not know means a newer imagine-agent wrote the ledger: it is refused.
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


Migration = Callable[[_Tx], None]
# In order; a function's name is what ledgers record, so a shipped migration is never renamed, edited or removed.
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register ``fn`` as the next migration (append only: a new one goes at the end of this module)."""
    if any(known.__name__ == fn.__name__ for known in MIGRATIONS):
        raise ValueError(f"two ledger migrations are named {fn.__name__!r}: a name must say one migration")
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_payments_tasks_settings(tx: _Tx) -> None:
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


@migration
def m002_pending_cancelled(tx: _Tx) -> None:
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


@migration
def m003_approvals_audit(tx: _Tx) -> None:
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


@migration
def m004_origin_sandbox(tx: _Tx) -> None:
    """Every payment records the origin it paid and whether that was a sandbox (money-safety rule 8).

    Rows written before this migration keep origin '' and count as real money: the safe reading.
    """
    tx.execute("ALTER TABLE payments ADD COLUMN origin TEXT NOT NULL DEFAULT ''")
    tx.execute("ALTER TABLE payments ADD COLUMN sandbox INTEGER NOT NULL DEFAULT 0 CHECK (sandbox IN (0, 1))")
    tx.execute("CREATE INDEX IF NOT EXISTS payments_sandbox ON payments (sandbox)")


@migration
def m005_task_timing(tx: _Tx) -> None:
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


@migration
def m006_approval_surface(tx: _Tx) -> None:
    """Every approval names the surface a person decided through (rule 5); older rows keep NULL."""
    tx.execute("ALTER TABLE approvals ADD COLUMN surface TEXT")


SCHEMA_VERSION = len(MIGRATIONS)


def _migrate(tx: _Tx) -> None:
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
    )
    versions = tx.execute("SELECT version, applied_at FROM schema_version ORDER BY version")
    current = int(versions[-1][0]) if versions else 0
    if current > len(MIGRATIONS):
        raise ConfigurationError(
            f"the ledger has schema version {current}, newer than this imagine-agent understands "
            f"({len(MIGRATIONS)}): upgrade imagine-agent before using this ledger"
        )
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
    )
    applied = {str(row[0]) for row in tx.execute("SELECT name FROM schema_migrations")}
    if not applied:  # from before names: version N means the first N migrations, applied when it says
        for version, applied_at in versions:
            name = MIGRATIONS[int(version) - 1].__name__
            tx.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", (name, applied_at))
            applied.add(name)
    unknown = sorted(applied - {fn.__name__ for fn in MIGRATIONS})
    if unknown:
        raise ConfigurationError(
            f"the ledger has migrations this imagine-agent does not know ({', '.join(unknown)}): "
            "upgrade imagine-agent before using this ledger"
        )
    for fn in MIGRATIONS:
        if fn.__name__ in applied:
            continue
        fn(tx)
        now = time.time()
        tx.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", (fn.__name__, now))
        applied.add(fn.__name__)
        # schema_version keeps counting the applied migrations: a release from before names reads only this
        # number, and refuses the ledger once it is more than the migrations that release knows.
        tx.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?, ?) ON CONFLICT (version) DO NOTHING",
            (len(applied), now),
        )
