"""Caps, the kill switch and the totals: what `reserve` must refuse before anything is signed."""

from __future__ import annotations

import pytest

from imagine_agent.errors import BudgetExceededError, ConfigurationError, WalletFrozenError
from imagine_agent.ledger import DAY, Caps, Ledger, PaymentState
from tests.ledger.support import NOW, USDC, in_state, journal, reserve


def test_reserve_inserts_a_reserved_row(ledger: Ledger) -> None:
    record = reserve(ledger, 3 * USDC, session_id="s1")
    assert record.state is PaymentState.RESERVED
    assert (record.amount, record.session_id, record.created_at) == (3 * USDC, "s1", NOW)
    assert len(record.id) == 32 and int(record.id, 16) >= 0  # uuid4 hex
    assert ledger.get(record.id) == record
    assert ledger.payments() == [record]


def test_per_call_cap(ledger: Ledger) -> None:
    caps = Caps(per_call=2 * USDC)
    reserve(ledger, 2 * USDC, caps=caps)
    with pytest.raises(BudgetExceededError) as refused:
        reserve(ledger, 2 * USDC + 1, caps=caps)
    assert str(refused.value) == (
        "2.000001 USDC would exceed the per-call cap of 2.000000 USDC. "
        "Nothing was signed. Raise IMAGINE_MAX_PER_CALL if you mean to pay it."
    )
    assert len(ledger.payments()) == 1


def test_daily_cap_is_a_rolling_24_hour_window(ledger: Ledger) -> None:
    caps = Caps(per_call=5 * USDC, daily=5 * USDC)
    reserve(ledger, 4 * USDC, caps=caps, now=NOW)
    reserve(ledger, USDC // 2, caps=caps, now=NOW + 3600)
    with pytest.raises(BudgetExceededError) as refused:
        reserve(ledger, USDC, caps=caps, now=NOW + 7200)
    assert str(refused.value) == (
        "1.000000 USDC would exceed the daily cap of 5.000000 USDC (4.500000 used, 0.500000 left). "
        "Nothing was signed. Raise IMAGINE_DAILY_CAP or wait."
    )
    reserve(ledger, USDC // 2, caps=caps, now=NOW + 7200)  # exactly up to the cap is fine
    with pytest.raises(BudgetExceededError):
        reserve(ledger, 1, caps=caps, now=NOW + DAY - 1)  # the first 4 USDC are not yet 24 h old
    reserve(ledger, 4 * USDC, caps=caps, now=NOW + DAY)  # ...and now they have rolled out
    assert ledger.totals(caps, now=NOW + DAY).daily_used == 5 * USDC


def test_total_cap_never_rolls(ledger: Ledger) -> None:
    caps = Caps(per_call=5 * USDC, total=3 * USDC)
    reserve(ledger, 2 * USDC, caps=caps, now=NOW)
    with pytest.raises(BudgetExceededError) as refused:
        reserve(ledger, 2 * USDC, caps=caps, now=NOW + 30 * DAY)
    assert str(refused.value) == (
        "2.000000 USDC would exceed the total cap of 3.000000 USDC (2.000000 used, 1.000000 left). "
        "Nothing was signed. Raise IMAGINE_TOTAL_CAP."
    )
    reserve(ledger, USDC, caps=caps, now=NOW + 30 * DAY)


def test_session_cap_counts_only_that_session(ledger: Ledger) -> None:
    caps = Caps(per_call=5 * USDC, session=2 * USDC)
    reserve(ledger, 2 * USDC, caps=caps, session_id="a")
    with pytest.raises(BudgetExceededError) as refused:
        reserve(ledger, USDC, caps=caps, session_id="a")
    assert "session cap of 2.000000 USDC (2.000000 used, 0.000000 left)" in str(refused.value)
    assert "IMAGINE_SESSION_CAP" in str(refused.value)
    reserve(ledger, 2 * USDC, caps=caps, session_id="b")
    with pytest.raises(ValueError, match="no session_id"):
        reserve(ledger, USDC, caps=caps)  # a session cap that could not apply is a bug, not a pass


def test_rate_per_minute(ledger: Ledger) -> None:
    caps = Caps(per_call=USDC, rate_per_minute=3)
    for second in range(3):
        reserve(ledger, caps=caps, now=NOW + second)
    with pytest.raises(BudgetExceededError) as refused:
        reserve(ledger, caps=caps, now=NOW + 59)
    assert str(refused.value) == (
        "3 payments in the last minute reach the rate limit of 3 per minute. "
        "Nothing was signed. Wait a minute or raise IMAGINE_RATE_PER_MINUTE."
    )
    reserve(ledger, caps=caps, now=NOW + 60.5)  # the first one is now more than 60 s old
    with pytest.raises(BudgetExceededError):
        reserve(ledger, caps=Caps(per_call=USDC, rate_per_minute=0), now=NOW + 3600)


def test_every_state_but_released_and_cancelled_counts(ledger: Ledger) -> None:
    for state in PaymentState:
        assert in_state(ledger, state, request_hash=f"r-{state}").state is state
    caps = Caps(per_call=USDC, total=6 * USDC)
    totals = ledger.totals(caps, now=NOW)
    assert totals.total_used == 5 * USDC  # reserved, paid, rejected (still valid), unknown, pending
    assert totals.unknown == 2 * USDC  # unknown and pending: sent, outcome not known here
    reserve(ledger, USDC, caps=caps)
    with pytest.raises(BudgetExceededError):
        reserve(ledger, 1, caps=caps)


def test_release_gives_the_amount_back(ledger: Ledger) -> None:
    caps = Caps(per_call=USDC, total=USDC)
    record = reserve(ledger, caps=caps)
    with pytest.raises(BudgetExceededError):
        reserve(ledger, caps=caps)
    ledger.release(record.id, reason="signing failed: nothing was sent")
    reserve(ledger, caps=caps)


def test_rejected_is_auto_released_only_after_valid_before(ledger: Ledger) -> None:
    caps = Caps(per_call=USDC, total=USDC)
    record = reserve(ledger, caps=caps)
    journal(ledger, record, valid_before=int(NOW) + 100)
    ledger.mark_rejected(record.id, reason="402 after payment: invalid_exact_evm_payload_signature")

    for now in (NOW + 50, NOW + 100):  # still valid (validBefore is exclusive): it could settle
        with pytest.raises(BudgetExceededError):
            reserve(ledger, caps=caps, now=now)
        assert ledger.get(record.id).state is PaymentState.REJECTED
        assert ledger.totals(caps, now=now).reserved == USDC

    assert ledger.totals(caps, now=NOW + 101).reserved == 0  # totals already sees it as gone...
    assert ledger.get(record.id).state is PaymentState.REJECTED  # ...without writing
    reserve(ledger, caps=caps, now=NOW + 101)
    released = ledger.get(record.id)
    assert released.state is PaymentState.RELEASED
    assert released.reason is not None and "validBefore has passed" in released.reason


def test_auto_release_is_kept_even_when_the_reservation_is_refused(ledger: Ledger) -> None:
    record = reserve(ledger, caps=Caps(per_call=USDC))
    journal(ledger, record, valid_before=int(NOW) + 10)
    ledger.mark_rejected(record.id, reason="402")
    with pytest.raises(BudgetExceededError):
        reserve(ledger, 2 * USDC, caps=Caps(per_call=USDC), now=NOW + 11)
    assert ledger.get(record.id).state is PaymentState.RELEASED


def test_kill_switch(ledger: Ledger) -> None:
    caps = Caps(per_call=USDC)
    assert not ledger.is_frozen()
    ledger.set_frozen(True, reason="operator: runaway agent")
    assert ledger.is_frozen() and ledger.totals(caps).frozen
    with pytest.raises(WalletFrozenError) as refused:
        reserve(ledger, caps=caps)
    assert "runaway agent" in str(refused.value) and "Nothing was signed" in str(refused.value)
    assert ledger.payments() == []
    ledger.set_frozen(False)
    assert not ledger.is_frozen()
    reserve(ledger, caps=caps)


def test_totals_arithmetic(ledger: Ledger) -> None:
    caps = Caps(per_call=10 * USDC, daily=20 * USDC, total=50 * USDC, session=8 * USDC)
    paid = in_state(ledger, PaymentState.PAID, now=NOW - 2 * DAY)  # 1 USDC, outside the daily window
    in_state(ledger, PaymentState.RELEASED, now=NOW)  # counts nowhere
    reserve(ledger, 2 * USDC, now=NOW - 30, session_id="s")
    reserve(ledger, 3 * USDC, now=NOW - 120, session_id="other")
    in_state(ledger, PaymentState.UNKNOWN, now=NOW - 10)  # 1 USDC
    rejected = reserve(ledger, 4 * USDC, now=NOW - 10, session_id="s")
    journal(ledger, rejected, valid_before=int(NOW) + 60)
    ledger.mark_rejected(rejected.id, reason="402")
    expired = reserve(ledger, 5 * USDC, now=NOW - 10, session_id="s")
    journal(ledger, expired, valid_before=int(NOW) - 1)
    ledger.mark_rejected(expired.id, reason="402")  # can no longer settle: counts nowhere

    totals = ledger.totals(caps, session_id="s", now=NOW)
    assert ledger.get(paid.id).state is PaymentState.PAID
    assert totals.spent == USDC
    assert totals.reserved == 2 * USDC + 3 * USDC + 4 * USDC
    assert totals.unknown == USDC
    assert totals.total_used == 11 * USDC
    assert totals.daily_used == 10 * USDC
    assert totals.session_used == 6 * USDC
    assert totals.remaining_daily == 10 * USDC
    assert totals.remaining_total == 39 * USDC
    assert totals.remaining_session == 2 * USDC
    assert totals.payments_last_minute == 3  # the 2, the unknown 1 and the live rejected 4
    assert totals.frozen is False

    no_session = ledger.totals(Caps(per_call=USDC), now=NOW)
    assert (no_session.session_used, no_session.remaining_session) == (None, None)
    assert (no_session.remaining_daily, no_session.remaining_total) == (None, None)
    over = ledger.totals(Caps(per_call=USDC, daily=USDC), now=NOW)
    assert over.remaining_daily == 0  # never negative


@pytest.mark.parametrize(
    "kwargs",
    [{"per_call": -1}, {"per_call": 1.5}, {"per_call": True}, {"per_call": 1, "daily": -5},
     {"per_call": 1, "total": 2**63}, {"per_call": None}],
)  # fmt: skip
def test_caps_refuse_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        Caps(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("amount", [0, -USDC, 1.5, True, 2**63])
def test_reserve_refuses_nonsense_amounts(ledger: Ledger, amount: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        reserve(ledger, amount)  # type: ignore[arg-type]
    assert ledger.payments() == []
