"""The PostgreSQL engine: one budget for a fleet; writers serialized by ``SELECT … FOR UPDATE`` on ``settings``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from ..errors import ConfigurationError
from .location import parse_ledger_url
from .pool import _Pool
from .schema import _migrate, _Tx
from .sql import _SqlLedger

if TYPE_CHECKING:
    import psycopg

_PG_MIGRATION_LOCK = 0x696D6167696E65  # pg_advisory_xact_lock key: "imagine" in ASCII


class _PgTx(_Tx):
    dialect = "postgres"

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
