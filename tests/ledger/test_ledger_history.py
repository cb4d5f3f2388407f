"""The tasks table keeps what the poller learns from: kind, creation, and the bracket of the end."""

from __future__ import annotations

import time

from imagine_agent.ledger import SCHEMA_VERSION, Ledger


def _done(
    ledger: Ledger,
    task_id: str,
    *,
    model: str = "m",
    duration: float = 8.0,
    origin: str = "https://a.test",
    pending: float = 50.0,
    done: float = 60.0,
) -> float:
    created = ledger.upsert_task(task_id, status="queued", origin=origin, model=model, duration=duration).created_at
    ledger.upsert_task(task_id, status="completed", completed_at=created + done, last_pending_at=created + pending)
    return created


def test_brackets_of_one_kind_newest_first_completed_only(ledger: Ledger) -> None:
    assert SCHEMA_VERSION >= 5
    _done(ledger, "a", pending=50, done=60)
    _done(ledger, "b", pending=55, done=65)
    _done(ledger, "other-model", model="n")
    _done(ledger, "other-length", duration=5)
    _done(ledger, "other-api", origin="https://b.test")
    ledger.upsert_task("failed", status="queued", origin="https://a.test", model="m", duration=8.0)
    ledger.upsert_task("failed", status="failed")
    ledger.upsert_task("running", status="processing", origin="https://a.test", model="m", duration=8.0)
    brackets = ledger.completion_brackets("https://a.test", "m", 8.0)
    assert [(round(lo, 3), round(hi, 3)) for lo, hi in brackets] == [(55.0, 65.0), (50.0, 60.0)]
    assert ledger.completion_brackets("https://a.test", "m", 8.0, limit=1) == brackets[:1]


def test_the_first_sighting_of_completion_is_kept(ledger: Ledger) -> None:
    created = _done(ledger, "a", pending=50, done=60)
    ledger.upsert_task("a", status="completed", completed_at=created + 900, last_pending_at=created + 890)
    ledger.upsert_task("a", status="completed", completed_at=None, last_pending_at=None)
    record = ledger.get_task("a")
    assert record is not None and record.completed_at is not None and record.last_pending_at is not None
    assert round(record.completed_at - created, 3) == 60.0 and round(record.last_pending_at - created, 3) == 50.0
    assert (record.origin, record.model, record.duration) == ("https://a.test", "m", 8.0)


def test_a_task_never_seen_unfinished_brackets_from_its_creation(ledger: Ledger) -> None:
    created = ledger.upsert_task("a", status="queued", origin="o", model="", duration=8.0).created_at
    ledger.upsert_task("a", status="completed", completed_at=created + 3.0)
    assert [(lo, round(hi, 3)) for lo, hi in ledger.completion_brackets("o", "", 8.0)] == [(0.0, 3.0)]
    assert time.time() >= created
