"""Migrations by name: a ledger from before names upgrades with its rows; a name we do not know is refused."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from imagine_agent.errors import ConfigurationError
from imagine_agent.ledger import SCHEMA_VERSION, Caps, PaymentState, open_ledger, parse_ledger_url
from imagine_agent.ledger import postgres as postgres_engine
from imagine_agent.ledger import schema as ledger_schema
from imagine_agent.ledger import sqlite as sqlite_engine
from imagine_agent.ledger.rows import _PAYMENT_COLUMNS

USDC = 1_000_000
SHIPPED = [
    "m001_payments_tasks_settings", "m002_pending_cancelled", "m003_approvals_audit", "m004_origin_sandbox",
    "m005_task_timing", "m006_approval_surface",
]  # fmt: skip
FIXTURE = Path(__file__).parent / "fixtures" / "ledger_schema_6.sql"


def _rows(ledger_url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows read straight from the store, beside the ledger."""
    if parse_ledger_url(ledger_url).engine == "sqlite":
        with sqlite3.connect(ledger_url) as conn:
            return list(conn.execute(sql))
    import psycopg

    with psycopg.connect(ledger_url) as conn:
        return list(conn.execute(sql))


def _names(ledger_url: str) -> list[str]:
    return [row[0] for row in _rows(ledger_url, "SELECT name FROM schema_migrations ORDER BY name")]


def _versions(ledger_url: str) -> list[int]:
    return [row[0] for row in _rows(ledger_url, "SELECT version FROM schema_version ORDER BY version")]


def test_the_shipped_migrations_keep_their_names_and_order() -> None:
    assert [fn.__name__ for fn in ledger_schema.MIGRATIONS] == SHIPPED
    assert len(SHIPPED) == SCHEMA_VERSION
    with pytest.raises(ValueError, match="m003_approvals_audit"):
        ledger_schema.migration(ledger_schema.m003_approvals_audit)  # a name says one migration
    assert [fn.__name__ for fn in ledger_schema.MIGRATIONS] == SHIPPED


def test_a_new_ledger_records_every_migration_by_name_and_counts_them(ledger_url: str) -> None:
    open_ledger(ledger_url).close()
    open_ledger(ledger_url).close()
    assert _names(ledger_url) == sorted(SHIPPED)
    assert _versions(ledger_url) == list(range(1, len(SHIPPED) + 1))  # what a release from before names reads


def test_a_ledger_file_written_before_named_migrations_upgrades_and_keeps_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fixture is a dump of a ledger the integer-versioned code wrote (schema_version 1..6, no names)."""
    path = str(tmp_path / "old.sqlite3")
    with sqlite3.connect(path) as conn:
        conn.executescript(FIXTURE.read_text())
    assert not _rows(path, "SELECT name FROM sqlite_master WHERE name = 'schema_migrations'")

    calls: list[str] = []

    def m007_a_later_column(tx: Any) -> None:
        calls.append("m007")
        tx.execute("ALTER TABLE tasks ADD COLUMN note TEXT")

    monkeypatch.setattr(ledger_schema, "MIGRATIONS", [*ledger_schema.MIGRATIONS, m007_a_later_column])
    with open_ledger(path) as ledger:
        assert calls == ["m007"]  # the six it had were taken as applied, not run again
        paid, pending = ledger.get("paid-1"), ledger.get("pending-1")
        assert (paid.state, paid.header, paid.task_id, paid.sandbox) == (
            PaymentState.PAID,
            "header-paid",
            "task-1",
            False,
        )
        assert (pending.state, pending.sandbox, pending.origin) == (PaymentState.PENDING, True, "http://127.0.0.1:8402")
        task = ledger.get_task("task-1")
        assert task is not None and (task.status, task.video_path, task.completed_at) == (
            "completed", "/videos/task-1.mp4", 1_800_000_060.0,
        )  # fmt: skip
        approval = ledger.get_approval("approval-1")
        assert (approval.decided_by, approval.surface, approval.amount) == ("alice", "cli", 3 * USDC)
        assert ledger.is_frozen()
        assert [event.code for event in ledger.events()] == ["frozen", "approved"]
        assert ledger.totals(Caps(per_call=USDC), now=1_800_000_100.0).spent == USDC
        assert ledger.totals(Caps(per_call=USDC), now=1_800_000_100.0, sandbox=True).unknown == 2 * USDC
    assert _names(path) == sorted([*SHIPPED, "m007_a_later_column"])
    baseline = _rows(path, "SELECT applied_at FROM schema_migrations WHERE name = 'm001_payments_tasks_settings'")
    assert baseline == [(1_800_000_000.0,)]  # when the old ledger says it applied it
    assert _versions(path) == list(range(1, len(SHIPPED) + 2))

    open_ledger(path).close()
    assert calls == ["m007"]  # run once


def _integer_era_migrate(count: int) -> Callable[[Any], None]:
    """What opening a ledger did before names: the first ``count`` migrations, counted in schema_version only."""

    def migrate(tx: Any) -> None:
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
            "applied_at DOUBLE PRECISION NOT NULL)"
        )
        current = int(tx.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0])
        for version in range(current + 1, count + 1):
            ledger_schema.MIGRATIONS[version - 1](tx)
            tx.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, time.time()))

    return migrate


@pytest.mark.parametrize("count", [1, 3, SCHEMA_VERSION])
def test_an_integer_versioned_ledger_counts_as_its_first_n_migrations(
    ledger_url: str, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    """On both engines: version N means the first N named migrations; the rest run; the rows stay."""
    monkeypatch.setattr(sqlite_engine, "_migrate", _integer_era_migrate(count))
    monkeypatch.setattr(postgres_engine, "_migrate", _integer_era_migrate(count))
    columns = _PAYMENT_COLUMNS[:18]  # the columns of version 1, as an old release wrote them
    values = ("old-1", "request-1", "paid", USDC, "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "base",
              "0x000000000000000000000000000000000000dEaD", "0x1111111111111111111111111111111111111111",
              "https://api.example/generation/create", None, "0x" + "ab" * 32, 2**40, "hdr", "task-old", "0xabc",
              None, 1.0, 1.0)  # fmt: skip
    with open_ledger(ledger_url) as old:
        with old._begin("write") as tx:  # type: ignore[attr-defined]
            tx.execute(f"INSERT INTO payments ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", values)
            tx.execute("INSERT INTO tasks (task_id, payment_id, status, created_at, updated_at) "
                       "VALUES ('task-old', 'old-1', 'processing', 1.0, 1.0)")  # fmt: skip
            tx.execute("UPDATE settings SET frozen = 1, frozen_reason = 'before the upgrade' WHERE id = 1")
    assert _versions(ledger_url) == list(range(1, count + 1))
    monkeypatch.undo()

    with open_ledger(ledger_url) as upgraded:
        record = upgraded.get("old-1")
        assert (record.state, record.header, record.amount, record.origin, record.sandbox) == (
            PaymentState.PAID, "hdr", USDC, "", False,
        )  # fmt: skip
        task = upgraded.get_task("task-old")
        assert task is not None and task.status == "processing" and task.origin is None
        assert upgraded.is_frozen()
        assert upgraded.totals(Caps(per_call=USDC), now=2.0).spent == USDC
    assert _names(ledger_url) == sorted(SHIPPED)
    assert _versions(ledger_url) == list(range(1, SCHEMA_VERSION + 1))


def test_a_migration_name_this_code_does_not_know_is_refused(ledger_url: str) -> None:
    """A newer imagine-agent wrote the ledger (or another branch's migration): refuse, name it, change nothing."""
    open_ledger(ledger_url).close()
    with open_ledger(ledger_url) as ledger, ledger._begin("write") as tx:  # type: ignore[attr-defined]
        tx.execute("INSERT INTO schema_migrations (name, applied_at) VALUES ('m900_from_the_future', 1.0)")
    with pytest.raises(ConfigurationError, match=r"m900_from_the_future.*upgrade imagine-agent"):
        open_ledger(ledger_url)
    assert _names(ledger_url) == sorted([*SHIPPED, "m900_from_the_future"])
    assert _versions(ledger_url) == list(range(1, SCHEMA_VERSION + 1))
