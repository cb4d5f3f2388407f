"""Opening, migrating, reopening and locating ledgers; what a ledger shows about itself."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagine_agent import ledger as ledger_module
from imagine_agent.errors import ConfigurationError
from imagine_agent.ledger import (
    SCHEMA_VERSION,
    Caps,
    Ledger,
    PaymentState,
    PostgresLedger,
    SqliteLedger,
    open_ledger,
    parse_ledger_url,
)
from imagine_agent.ledger import schema as ledger_schema
from tests import pg
from tests.ledger.support import USDC, in_state, journal, reserve


def test_public_names_are_pinned() -> None:
    assert ledger_module.__all__ == [
        "SCHEMA_VERSION", "ApprovalRecord", "ApprovalState", "AuditEvent", "BudgetTotals", "Caps", "Ledger", "LedgerLocation", "PaymentRecord", "PaymentState",
        "PostgresLedger", "SqliteLedger", "TaskFields", "TaskRecord", "open_ledger", "parse_ledger_url",
    ]  # fmt: skip
    assert [s.value for s in PaymentState] == [
        "reserved",
        "paid",
        "rejected",
        "released",
        "unknown",
        "pending",
        "cancelled",
    ]


def _versions(ledger_url: str) -> list[int]:
    """The rows of schema_version, read straight from the store."""
    if parse_ledger_url(ledger_url).engine == "sqlite":
        with sqlite3.connect(ledger_url) as conn:
            return [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY version")]
    import psycopg

    with psycopg.connect(ledger_url) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY version")]


def test_everything_persists_across_reopen(ledger_url: str) -> None:
    with open_ledger(ledger_url) as first:
        record = reserve(first, session_id="s")
        header = journal(first, record)
        paid = in_state(first, PaymentState.PAID, request_hash="other")
        first.upsert_task("task-1", payment_id=paid.id, status="processing", progress=12.0)
        first.set_frozen(True, reason="incident 7")
    with open_ledger(ledger_url) as second:
        assert second.get(record.id).header == header
        assert second.get(paid.id) == paid
        assert second.in_flight() == [second.get(record.id)]
        task = second.get_task("task-1")
        assert task is not None and (task.status, task.progress) == ("processing", 12.0)
        assert second.is_frozen()
        assert second.totals(Caps(per_call=USDC)).spent == USDC


def test_migrations_run_once_and_the_version_is_kept(ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    open_ledger(ledger_url).close()
    open_ledger(ledger_url).close()
    shipped = list(range(1, SCHEMA_VERSION + 1))
    assert _versions(ledger_url) == shipped and SCHEMA_VERSION >= 2

    calls: list[int] = []

    def migration_next(tx: object) -> None:
        calls.append(SCHEMA_VERSION + 1)
        tx.execute("ALTER TABLE tasks ADD COLUMN note TEXT")  # type: ignore[attr-defined]

    monkeypatch.setattr(ledger_schema, "MIGRATIONS", [*ledger_schema.MIGRATIONS, migration_next])
    with open_ledger(ledger_url) as upgraded:
        upgraded.upsert_task("task-1", status="queued")  # still works with the extra column
    open_ledger(ledger_url).close()
    assert calls == [SCHEMA_VERSION + 1] and _versions(ledger_url) == [*shipped, SCHEMA_VERSION + 1]

    monkeypatch.undo()  # this imagine-agent knows only the shipped versions: it must refuse the newer ledger
    with pytest.raises(ConfigurationError, match="upgrade imagine-agent"):
        open_ledger(ledger_url)


def test_a_failed_migration_changes_nothing(ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    open_ledger(ledger_url).close()

    def broken(tx: object) -> None:
        tx.execute("CREATE TABLE half_done (x INTEGER)")  # type: ignore[attr-defined]
        raise RuntimeError("boom")

    monkeypatch.setattr(ledger_schema, "MIGRATIONS", [*ledger_schema.MIGRATIONS, broken])
    with pytest.raises(RuntimeError):
        open_ledger(ledger_url)
    monkeypatch.undo()
    assert _versions(ledger_url) == list(range(1, SCHEMA_VERSION + 1))
    open_ledger(ledger_url).close()


def test_a_version_1_ledger_upgrades_with_its_rows_and_takes_the_new_states(
    ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_schema, "MIGRATIONS", ledger_schema.MIGRATIONS[:1])
    with open_ledger(ledger_url) as old:
        record_id = _insert_version_1_row(old)
    assert _versions(ledger_url) == [1]
    monkeypatch.undo()
    with open_ledger(ledger_url) as upgraded:
        record = upgraded.get(record_id)
        assert record.header == "hdr"  # the journal survived the rebuild
        assert record.sandbox is False and record.origin == ""  # an old row counts as real money
        upgraded.mark_pending(record.id, transaction="0x" + "cd" * 32, reason="settlement_pending")
        pending = upgraded.get(record.id)
        assert pending.state is PaymentState.PENDING and pending.transaction == "0x" + "cd" * 32
        assert upgraded.totals(Caps(per_call=USDC)).unknown == pending.amount  # pending counts as spent
        upgraded.mark_cancelled(record.id, reason="the chain shows the authorization cancelled")
        assert upgraded.get(record.id).state is PaymentState.CANCELLED
        assert upgraded.totals(Caps(per_call=USDC)).unknown == 0  # cancelled can never settle
    assert _versions(ledger_url) == list(range(1, SCHEMA_VERSION + 1))


def _insert_version_1_row(ledger: Ledger) -> str:
    """A reserved, journaled payment written with the version 1 columns only (as an old release wrote it)."""
    columns = ledger_module._PAYMENT_COLUMNS[:18]
    values = (
        "old-1",
        "request-1",
        "reserved",
        USDC,
        "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        "base",
        "0x000000000000000000000000000000000000dEaD",
        "0x1111111111111111111111111111111111111111",
        "https://api.example/generation/create",
        None,
        "0x" + "ab" * 32,
        2**40,
        "hdr",
        None,
        None,
        None,
        1.0,
        1.0,
    )
    with ledger._begin("write") as tx:  # type: ignore[attr-defined]
        tx.execute(f"INSERT INTO payments ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", values)
    return "old-1"


def test_sqlite_file_is_wal_private_and_created_with_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "ledger.sqlite3"
    with SqliteLedger(path) as ledger:
        reserve(ledger)
        assert repr(ledger) == f"SqliteLedger(path={str(path)!r})"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("where", ["", ":memory:", "sqlite:///:memory:"])
def test_sqlite_ledger_must_be_a_file(where: str) -> None:
    with pytest.raises(ConfigurationError):
        open_ledger(where)


def test_a_closed_ledger_refuses_work(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "ledger.sqlite3")
    ledger.close()
    with pytest.raises(ValueError, match="closed"):
        ledger.is_frozen()


@pytest.mark.postgres
def test_postgres_repr_and_errors_hide_the_password(postgres_url: str) -> None:
    secret = "S3cr3t-pw"
    with_password = postgres_url.replace("postgres@", f"postgres:{secret}@", 1)  # trust auth ignores it
    assert with_password != postgres_url
    with open_ledger(with_password) as ledger:
        assert isinstance(ledger, PostgresLedger)
        assert secret not in repr(ledger)
        assert repr(ledger).startswith("PostgresLedger('postgresql://postgres@127.0.0.1:")
    with pytest.raises(ConfigurationError) as refused:
        open_ledger(f"postgresql://postgres:{secret}@127.0.0.1:1/nothing_here")
    assert secret not in str(refused.value) and "127.0.0.1:1" in str(refused.value)


@pytest.mark.postgres
def test_concurrent_postgres_openers_do_not_race_the_migration(postgres_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        ledgers = list(pool.map(lambda _: open_ledger(postgres_url), range(8)))
    for opened in ledgers:
        opened.close()
    assert _versions(postgres_url) == list(range(1, SCHEMA_VERSION + 1))


def _reserve_many(ledger: Ledger, who: str, count: int = 40) -> None:
    for i in range(count):
        reserve(ledger, request_hash=f"{who}-{i}")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_opens_its_own_connections(ledger: Ledger) -> None:
    reserve(ledger, request_hash="before-fork")  # leaves an idle connection in the pool
    child = multiprocessing.get_context("fork").Process(target=_reserve_many, args=(ledger, "child"))
    child.start()
    _reserve_many(ledger, "parent")  # at the same time: one shared connection would garble both
    child.join(30)
    assert child.exitcode == 0
    assert len(ledger.payments()) == 81


# ------------------------------------------------------------------------------------------ locations


@pytest.mark.parametrize(
    ("where", "engine", "target"),
    [
        ("ledger.sqlite3", "sqlite", "ledger.sqlite3"),
        ("/var/lib/imagine/ledger.db", "sqlite", "/var/lib/imagine/ledger.db"),
        ("sqlite:///relative.db", "sqlite", "relative.db"),
        ("sqlite:////abs/ledger.db", "sqlite", "/abs/ledger.db"),
        ("C://Users/me/ledger.db", "sqlite", "C://Users/me/ledger.db"),
        ("postgresql://u:pw@db.internal:5433/imagine", "postgres", "postgresql://u:pw@db.internal:5433/imagine"),
        ("postgres://db/imagine?sslmode=require", "postgres", "postgres://db/imagine?sslmode=require"),
        ("POSTGRESQL://db/x", "postgres", "POSTGRESQL://db/x"),
    ],
)
def test_parse_ledger_url(where: str, engine: str, target: str) -> None:
    location = parse_ledger_url(where)
    assert (location.engine, location.target) == (engine, target)


def test_parse_ledger_url_expands_home_and_takes_paths() -> None:
    assert parse_ledger_url("~/ledger.db").target == os.path.expanduser("~/ledger.db")
    assert parse_ledger_url(Path("/x/ledger.db")).target == "/x/ledger.db"


@pytest.mark.parametrize(
    "where", ["mysql://db/x", "sqlite://host/x.db", "sqlite:///", "postgresql://h:notaport/x", "a\x00b", ""]
)
def test_parse_ledger_url_refuses(where: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_ledger_url(where)


@given(st.text(min_size=1).filter(lambda s: "://" not in s and "\x00" not in s))
def test_anything_without_a_scheme_is_a_sqlite_path(text: str) -> None:
    location = parse_ledger_url(text)
    assert (location.engine, location.target) == ("sqlite", os.path.expanduser(text))


@given(st.text())
def test_parse_ledger_url_raises_only_configuration_errors(text: str) -> None:
    try:
        location = parse_ledger_url(text)
    except ConfigurationError:
        return
    assert location.engine in ("sqlite", "postgres")


_URL_PART = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=20)


@given(
    user=_URL_PART,
    password=_URL_PART,
    host=st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True),
    port=st.none() | st.integers(1, 65535),
    db=st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True),
    query=st.sampled_from(["", "?sslmode=require", "?password=QUERYPW"]),
)
def test_a_postgres_password_never_shows(
    user: str, password: str, host: str, port: int | None, db: str, query: str
) -> None:
    secret = "PW-" + password
    netloc = f"{quote(user, safe='')}:{quote(secret, safe='')}@{host}{'' if port is None else f':{port}'}"
    location = parse_ledger_url(f"postgresql://{netloc}/{db}{query}")
    assert location.engine == "postgres"
    shown = location.display + repr(location)
    assert quote(secret, safe="") not in shown and secret not in shown and "QUERYPW" not in shown
    assert location.display == f"postgresql://{quote(user, safe='')}@{host}{'' if port is None else f':{port}'}/{db}"


# ------------------------------------------------------------------------------------- the pg fixture


def _outcome(call: Callable[[], object]) -> str:
    try:
        return f"url {call()}"
    except pytest.skip.Exception:
        return "skip"
    except pytest.fail.Exception:
        return "fail"


def test_postgres_fixture_skips_locally_and_fails_under_ci() -> None:
    url = "postgresql://postgres@127.0.0.1:54329/x"
    assert _outcome(lambda: pg.server_url({pg.ENV: url, "CI": "true"})) == f"url {url}"
    assert _outcome(lambda: pg.server_url({})) == "skip"
    assert _outcome(lambda: pg.server_url({"CI": "false"})) == "skip"
    assert _outcome(lambda: pg.server_url({"CI": "true"})) == "fail"
    assert _outcome(lambda: pg.server_url({"CI": "1", pg.ENV: "  "})) == "fail"


def test_open_ledger_picks_the_engine(tmp_path: Path) -> None:
    with open_ledger(f"sqlite:///{tmp_path}/a.db") as ledger:
        assert isinstance(ledger, SqliteLedger) and isinstance(ledger, Ledger)
        assert ledger.path == f"{tmp_path}/a.db"
