"""``chain_decides`` (money-safety rule 9): with an RPC of the right chain, the clock frees nothing.

A ``rejected`` payment past its ``validBefore`` still counts against every window and blocks a new signature
for its request; only a release (reconcile, by the chain) frees it. Without it the clock rule is unchanged.
SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import pytest

from imagine_agent.errors import BudgetExceededError, PaymentInFlightError
from imagine_agent.ledger import Caps, Ledger, PaymentState

from .support import NOW, USDC, journal

DAILY = Caps(per_call=5 * USDC, daily=int(1.5 * USDC))


def _rejected(ledger: Ledger) -> str:
    record = ledger.reserve(
        request_hash="request-1",
        amount=USDC,
        asset="0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        network="base",
        pay_to="0x000000000000000000000000000000000000dEaD",
        payer="0x1111111111111111111111111111111111111111",
        resource="r",
        caps=DAILY,
        now=NOW,
    )
    journal(ledger, record, valid_before=int(NOW) + 60)
    ledger.mark_rejected(record.id, reason="402 invalid_exact_evm_payload_signature")
    return record.id


def _again(ledger: Ledger, *, chain_decides: bool, exclusive: bool = False) -> object:
    return ledger.reserve(
        request_hash="request-1",
        amount=USDC,
        asset="0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        network="base",
        pay_to="0x000000000000000000000000000000000000dEaD",
        payer="0x1111111111111111111111111111111111111111",
        resource="r",
        caps=DAILY,
        now=NOW + 3600,
        exclusive=exclusive,
        chain_decides=chain_decides,
    )


def test_with_the_chain_deciding_an_expired_rejection_still_counts_and_blocks(ledger: Ledger) -> None:
    payment = _rejected(ledger)
    later = NOW + 3600  # long past validBefore by the local clock
    assert ledger.totals(DAILY, now=later, chain_decides=True).reserved == USDC
    assert ledger.would_refuse(USDC, DAILY, now=later, chain_decides=True) is not None
    with pytest.raises(BudgetExceededError):
        _again(ledger, chain_decides=True)
    with pytest.raises(PaymentInFlightError):
        _again(ledger, chain_decides=True, exclusive=True)
    assert ledger.find_open("request-1", now=later, chain_decides=True) is not None
    assert ledger.get(payment).state == PaymentState.REJECTED  # nothing freed it
    ledger.release(payment, reason="nonce unused on chain at block time past validBefore")
    assert _again(ledger, chain_decides=True, exclusive=True) is not None


def test_without_an_rpc_the_clock_rule_is_unchanged(ledger: Ledger) -> None:
    payment = _rejected(ledger)
    assert ledger.totals(DAILY, now=NOW + 3600).reserved == 0
    assert _again(ledger, chain_decides=False, exclusive=True) is not None
    assert ledger.get(payment).state == PaymentState.RELEASED
