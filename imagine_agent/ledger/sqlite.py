"""The SQLite engine: one file in WAL mode, writers serialized by ``BEGIN IMMEDIATE``."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigurationError
from .pool import _Pool
from .schema import _migrate, _Tx
from .sql import _SqlLedger

BUSY_TIMEOUT = 30.0  # seconds a writer waits for another process's lock before giving up


def _use_wal(conn: sqlite3.Connection) -> None:
    """Put the file in WAL mode. Processes opening a brand-new file together race to switch it, and SQLite may
    answer a loser "database is locked" at once instead of waiting out the busy timeout: wait for it here."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    delay = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(2 * delay, 0.05)


class _SqliteTx(_Tx):
    dialect = "sqlite"

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
            _use_wal(conn)  # readers never block the writer
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
