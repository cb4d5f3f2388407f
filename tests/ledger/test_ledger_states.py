"""The payment state machine, the journal, `find_open` and the tasks table."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from imagine_agent.ledger import Ledger, PaymentState
from tests.ledger.support import NOW, USDC, in_state, journal, reserve

S = PaymentState
LEGAL = {
    S.RESERVED: {S.PAID, S.REJECTED, S.UNKNOWN, S.PENDING, S.RELEASED},
    S.REJECTED: {S.RELEASED, S.PAID, S.UNKNOWN, S.CANCELLED},
    S.UNKNOWN: {S.PAID, S.RELEASED, S.PENDING, S.CANCELLED},
    S.PENDING: {S.PAID, S.UNKNOWN, S.RELEASED, S.CANCELLED},
    S.PAID: set(),
    S.RELEASED: set(),
    S.CANCELLED: set(),
}
MOVES: dict[PaymentState, Callable[[Ledger, str], None]] = {
    S.PAID: lambda ledger, pid: ledger.mark_paid(pid, task_id="task-1", transaction="0xfeed"),
    S.REJECTED: lambda ledger, pid: ledger.mark_rejected(pid, reason="402: nonce already used"),
    S.UNKNOWN: lambda ledger, pid: ledger.mark_unknown(pid, reason="connection dropped"),
    S.RELEASED: lambda ledger, pid: ledger.release(pid, reason="expired unsettled (authorizationState)"),
    S.PENDING: lambda ledger, pid: ledger.mark_pending(pid, transaction="0x" + "aa" * 32, reason="settlement_pending"),
    S.CANCELLED: lambda ledger, pid: ledger.mark_cancelled(pid, reason="authorizationState: cancelled"),
}


@pytest.mark.parametrize("start", list(PaymentState))
def test_transitions(ledger: Ledger, start: PaymentState) -> None:
    for target, move in MOVES.items():
        record = in_state(ledger, start, request_hash=f"{start}-{target}")
        if target in LEGAL[start]:
            move(ledger, record.id)
            after = ledger.get(record.id)
            assert after.state is target
            assert after.updated_at >= record.updated_at
        else:
            with pytest.raises(ValueError, match="not a legal transition"):
                move(ledger, record.id)
            assert ledger.get(record.id) == record  # untouched


@pytest.mark.parametrize("target", [S.PAID, S.REJECTED, S.UNKNOWN, S.PENDING])
def test_a_payment_never_sent_cannot_be_paid_rejected_or_unknown(ledger: Ledger, target: PaymentState) -> None:
    record = reserve(ledger)  # no header journaled: nothing can have left this process
    with pytest.raises(ValueError, match="no journaled header"):
        MOVES[target](ledger, record.id)
    ledger.release(record.id, reason="not sent: signer raised")
    assert ledger.get(record.id).state is S.RELEASED


def test_release_needs_a_reason(ledger: Ledger) -> None:
    record = reserve(ledger)
    journal(ledger, record)
    with pytest.raises(ValueError, match="reason"):
        ledger.release(record.id, reason="  ")
    ledger.release(record.id, reason="header never sent: process stopped before the request")
    assert ledger.get(record.id).reason == "header never sent: process stopped before the request"


def test_mark_paid_keeps_what_it_is_not_told(ledger: Ledger) -> None:
    record = in_state(ledger, S.REJECTED)
    ledger.mark_paid(record.id, task_id="task-9", transaction=None)
    paid = ledger.get(record.id)
    assert (paid.state, paid.task_id, paid.transaction) == (S.PAID, "task-9", None)
    unknown = in_state(ledger, S.UNKNOWN, request_hash="other")
    ledger.mark_paid(unknown.id, task_id=None, transaction="0x" + "ab" * 32)
    assert ledger.get(unknown.id).transaction == "0x" + "ab" * 32


def test_journal_authorization(ledger: Ledger) -> None:
    record = reserve(ledger)
    header = journal(ledger, record, valid_before=int(NOW) + 300)
    journaled = ledger.get(record.id)
    assert (journaled.nonce, journaled.valid_before, journaled.header) == ("0x" + record.id, int(NOW) + 300, header)
    assert header not in repr(journaled)  # a signed header is a bearer instrument
    journal(ledger, record, valid_before=int(NOW) + 300)  # the same header again: harmless
    with pytest.raises(ValueError, match="never sign twice"):
        ledger.journal_authorization(record.id, nonce="0x01", valid_before=int(NOW) + 300, header="another")

    other = reserve(ledger, request_hash="request-2")
    with pytest.raises(ValueError, match="already journaled"):
        ledger.journal_authorization(other.id, nonce="0x" + record.id, valid_before=1, header="h2")

    ledger.mark_unknown(record.id, reason="timeout")
    with pytest.raises(ValueError, match="only a reservation"):
        journal(ledger, ledger.get(record.id))


def test_get_unknown_id(ledger: Ledger) -> None:
    with pytest.raises(KeyError):
        ledger.get("0" * 32)


def test_find_open(ledger: Ledger) -> None:
    assert ledger.find_open("request-1") is None
    released = in_state(ledger, S.RELEASED, now=NOW)
    assert ledger.find_open("request-1") is None
    rejected = in_state(ledger, S.REJECTED, now=NOW + 1)
    later = NOW + 100_000
    assert ledger.find_open("request-1", now=NOW + 1) == rejected  # refused, but still valid: no new signature
    assert ledger.find_open("request-1", now=later) is None  # expired unsettled: paying anew is safe

    unknown = in_state(ledger, S.UNKNOWN, now=NOW + 2)
    assert ledger.find_open("request-1") == unknown
    assert ledger.find_open("request-2") is None

    reserved = reserve(ledger, now=NOW + 3)
    assert ledger.find_open("request-1") == reserved  # the newest open one
    ledger.release(reserved.id, reason="not sent")
    assert ledger.find_open("request-1") == unknown

    ledger.mark_paid(unknown.id, task_id="task-1", transaction=None)
    assert ledger.find_open("request-1") == ledger.get(unknown.id)  # paid, task not known yet: attach
    for status in ("queued", "processing"):
        ledger.upsert_task("task-1", status=status, payment_id=unknown.id)
        assert ledger.find_open("request-1") == ledger.get(unknown.id)
    for status in ("completed", "failed", "not_found"):
        ledger.upsert_task("task-1", status=status)
        assert ledger.find_open("request-1", now=later) is None  # finished: a re-run is a new purchase
    assert {released.id, rejected.id} <= {p.id for p in ledger.payments()}


def test_in_flight_and_payments(ledger: Ledger) -> None:
    late = reserve(ledger, now=NOW + 10, request_hash="late")
    early = reserve(ledger, now=NOW, request_hash="early")
    paid = in_state(ledger, S.PAID, now=NOW + 20, request_hash="paid")
    released = in_state(ledger, S.RELEASED, now=NOW + 30, request_hash="released")
    assert ledger.in_flight() == [early, late]  # oldest first: the order to resume them in

    assert [p.id for p in ledger.payments()] == [released.id, paid.id, late.id, early.id]
    assert [p.id for p in ledger.payments(limit=2)] == [released.id, paid.id]
    assert ledger.payments(limit=0) == []
    assert [p.id for p in ledger.payments(states=[S.PAID, S.RESERVED])] == [paid.id, late.id, early.id]
    assert ledger.payments(states=[]) == []
    with pytest.raises(ValueError):
        ledger.payments(limit=-1)
    assert sum(p.amount for p in ledger.payments(states=[S.RESERVED])) == 2 * USDC


def test_tasks(ledger: Ledger) -> None:
    assert ledger.get_task("task-1") is None
    created = ledger.upsert_task("task-1", payment_id="p1", request_hash="r1", prompt="a red fox")
    assert (created.status, created.progress, created.prompt, created.payment_id) == ("queued", None, "a red fox", "p1")

    updated = ledger.upsert_task("task-1", status="processing", progress=42.5)
    assert (updated.status, updated.progress, updated.prompt) == ("processing", 42.5, "a red fox")
    assert updated.created_at == created.created_at and updated.updated_at >= created.updated_at

    done = ledger.upsert_task(
        "task-1", status="completed", progress=100.0, video_url="https://cdn/v.mp4", preview_url="https://cdn/p.png",
        video_path="/tmp/v.mp4", result_json='{"status": "completed"}',
    )  # fmt: skip
    assert ledger.get_task("task-1") == done
    assert (done.video_url, done.preview_url) == ("https://cdn/v.mp4", "https://cdn/p.png")
    assert (done.video_path, done.result_json) == ("/tmp/v.mp4", '{"status": "completed"}')
    assert ledger.upsert_task("task-1", video_path=None).video_path is None  # an explicit None clears

    ledger.upsert_task("task-2", status="processing")
    ledger.upsert_task("task-3", status="failed")
    ledger.upsert_task("task-4", status="queued")
    assert [t.task_id for t in ledger.tasks()] == ["task-4", "task-3", "task-2", "task-1"]
    assert [t.task_id for t in ledger.tasks(pending_only=True)] == ["task-4", "task-2"]
    assert [t.task_id for t in ledger.tasks(limit=1)] == ["task-4"]

    with pytest.raises(TypeError, match="unknown fields"):
        ledger.upsert_task("task-1", colour="red")  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        ledger.upsert_task("task-1", status="")
