"""The approvals queue and the audit, on SQLite and on a real PostgreSQL: shared, bound, expiring, final."""

from __future__ import annotations

import pytest

from imagine_agent.errors import ApprovalDeniedError, BudgetExceededError
from imagine_agent.ledger import ApprovalState, Caps, Ledger, PaymentState, open_ledger
from tests.ledger.support import GENEROUS, NOW, USDC, reserve

HOUR = 3600.0


def ask(
    ledger: Ledger, amount: int = 3 * USDC, *, request_hash: str = "request-1", now: float = NOW, ttl: float = HOUR
) -> str:
    record = ledger.request_approval(
        request_hash=request_hash,
        amount=amount,
        asset="0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        network="base",
        pay_to="0x000000000000000000000000000000000000dEaD",
        resource="https://eliza.getimagine.club/generation/create",
        description="a fox",
        requester="social-bot",
        ttl=ttl,
        request_json='{"prompt": "a fox"}',
        now=now,
    )
    return record.id


def test_a_queued_request_is_one_entry_seen_by_every_process(ledger_url: str) -> None:
    with open_ledger(ledger_url) as bot, open_ledger(ledger_url) as operator:
        first = ask(bot)
        assert ask(bot, now=NOW + 5) == first  # asked again: the same entry, not a second one
        (entry,) = operator.approvals(now=NOW + 10)
        assert (entry.id, entry.state, entry.amount, entry.requester) == (
            first,
            ApprovalState.AWAITING,
            3 * USDC,
            "social-bot",
        )
        assert entry.request_json == '{"prompt": "a fox"}' and entry.expires_at == NOW + HOUR
        assert bot.payments() == []  # nothing is reserved while it waits
        operator.decide_approval(first, approve=True, decided_by="console", ttl=HOUR, now=NOW + 20)
        assert bot.get_approval(first).state is ApprovalState.APPROVED
        assert bot.get_approval(first).expires_at == NOW + 20 + HOUR  # valid an hour from the decision
        codes = [(e.kind, e.code) for e in operator.events()]
        assert codes == [("approval", "approved"), ("approval", "awaiting_approval")]


def test_an_approval_pays_that_request_at_that_price_or_less_once(ledger: Ledger) -> None:
    approval = ask(ledger)
    ledger.decide_approval(approval, approve=True, decided_by="cli", ttl=HOUR, now=NOW)
    with pytest.raises(ApprovalDeniedError, match="another request"):
        _reserve_with(ledger, approval, request_hash="request-2")
    with pytest.raises(ApprovalDeniedError, match="lower price"):
        _reserve_with(ledger, approval, amount=3 * USDC + 1)
    assert ledger.payments() == []
    paid = _reserve_with(ledger, approval, amount=2 * USDC)
    assert ledger.get_approval(approval).state is ApprovalState.USED
    assert ledger.get_approval(approval).payment_id == paid.id
    with pytest.raises(ApprovalDeniedError) as again:
        _reserve_with(ledger, approval, amount=2 * USDC)
    assert again.value.code == "approval_expired"
    assert [p.id for p in ledger.payments()] == [paid.id]


def test_a_denial_is_final_and_an_unused_approval_expires(ledger: Ledger) -> None:
    denied = ask(ledger, request_hash="no")
    ledger.decide_approval(denied, approve=False, decided_by="console", reason="too dear", ttl=HOUR, now=NOW)
    assert ask(ledger, request_hash="no", now=NOW + 1) == denied  # asking again gets the same final answer
    with pytest.raises(ValueError, match="denied"):
        ledger.decide_approval(denied, approve=True, decided_by="console", ttl=HOUR, now=NOW + 2)
    with pytest.raises(ApprovalDeniedError) as refused:
        _reserve_with(ledger, denied, request_hash="no")
    assert refused.value.code == "approval_denied"

    late = ask(ledger, request_hash="late", now=NOW)
    ledger.decide_approval(late, approve=True, decided_by="cli", ttl=60, now=NOW + 10)
    with pytest.raises(ApprovalDeniedError) as expired:
        _reserve_with(ledger, late, request_hash="late", now=NOW + 71)
    assert expired.value.code == "approval_expired"
    assert ledger.get_approval(late).state is ApprovalState.EXPIRED

    stale = ask(ledger, request_hash="stale", now=NOW, ttl=60)
    with pytest.raises(ValueError, match="expired"):
        ledger.decide_approval(stale, approve=True, decided_by="cli", ttl=HOUR, now=NOW + 61)
    assert ask(ledger, request_hash="stale", now=NOW + 62) != stale  # a fresh question after expiry


def test_a_higher_price_asks_again(ledger: Ledger) -> None:
    cheap = ask(ledger, 3 * USDC)
    ledger.decide_approval(cheap, approve=True, decided_by="cli", ttl=HOUR, now=NOW)
    assert ask(ledger, 2 * USDC, now=NOW + 1) == cheap  # covered
    dearer = ask(ledger, 4 * USDC, now=NOW + 2)
    assert dearer != cheap and ledger.get_approval(dearer).state is ApprovalState.AWAITING
    assert ledger.get_approval(cheap).state is ApprovalState.EXPIRED


def test_caps_still_apply_to_an_approved_payment(ledger: Ledger) -> None:
    approval = ask(ledger)
    ledger.decide_approval(approval, approve=True, decided_by="cli", ttl=HOUR, now=NOW)
    with pytest.raises(BudgetExceededError) as refused:
        _reserve_with(ledger, approval, caps=Caps(per_call=10 * USDC, daily=2 * USDC))
    assert refused.value.code == "daily_cap"
    assert ledger.get_approval(approval).state is ApprovalState.APPROVED  # not consumed by a refusal


def test_crossing_80_and_95_percent_records_one_warning_each(ledger: Ledger) -> None:
    caps = Caps(per_call=100 * USDC, daily=10 * USDC, total=100 * USDC)
    first = reserve(ledger, 7 * USDC, caps=caps)
    assert ledger.events(payment_id=first.id) == []
    second = reserve(ledger, USDC, caps=caps, request_hash="r2")  # 8 of 10: exactly 80 %
    assert [e.code for e in ledger.events(payment_id=second.id)] == ["daily_80"]
    third = reserve(ledger, USDC, caps=caps, request_hash="r3")  # 9 of 10
    assert ledger.events(payment_id=third.id) == []
    fourth = reserve(ledger, USDC, caps=caps, request_hash="r4")  # 10 of 10
    (warning,) = ledger.events(payment_id=fourth.id)
    assert (warning.kind, warning.code, warning.amount) == ("warning", "daily_95", USDC)
    assert "10.000000 USDC of 10.000000 USDC used, 0.000000 USDC left" in warning.message
    assert [e.code for e in ledger.events(kinds=["warning"])] == ["daily_95", "daily_80"]


def test_events_feed_pages_forward(ledger: Ledger) -> None:
    first = ledger.record_event("refusal", "frozen", "the kill switch is on", amount=USDC, source="mcp")
    second = ledger.record_event("refusal", "per_call_cap", "over the cap", amount=9 * USDC)
    assert [e.id for e in ledger.events(after_id=first.id)] == [second.id]
    assert [e.code for e in ledger.events(kinds=["refusal"])] == ["per_call_cap", "frozen"]
    assert first.source == "mcp" and first.amount == USDC
    with pytest.raises(TypeError):
        ledger.record_event("refusal", "x", "y", header="secret")


def _reserve_with(
    ledger: Ledger,
    approval_id: str,
    *,
    amount: int = 3 * USDC,
    request_hash: str = "request-1",
    now: float = NOW,
    caps: Caps = GENEROUS,
) -> object:
    record = ledger.reserve(
        request_hash=request_hash,
        amount=amount,
        asset="0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        network="base",
        pay_to="0x000000000000000000000000000000000000dEaD",
        payer="0x1111111111111111111111111111111111111111",
        resource="https://eliza.getimagine.club/generation/create",
        caps=caps,
        now=now,
        approval_id=approval_id,
    )
    assert record.state is PaymentState.RESERVED
    return record


def test_racing_reservations_use_one_approval_once(ledger_url: str) -> None:
    """Eight connections reserve with the same approval at once: one reservation, seven refusals."""
    import threading

    with open_ledger(ledger_url) as setup:
        approval = ask(setup)
        setup.decide_approval(approval, approve=True, decided_by="cli", ttl=HOUR, now=NOW)
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def race(i: int) -> None:
        with open_ledger(ledger_url) as mine:
            barrier.wait()
            try:
                _reserve_with(mine, approval)
                outcomes.append("reserved")
            except ApprovalDeniedError as exc:
                outcomes.append(exc.code)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["approval_expired"] * 7 + ["reserved"]
    with open_ledger(ledger_url) as check:
        assert len(check.payments()) == 1 and check.get_approval(approval).state is ApprovalState.USED
