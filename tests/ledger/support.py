"""Helpers shared by the ledger tests (imported as ``tests.ledger.support``)."""

from __future__ import annotations

from imagine_agent.ledger import Caps, Ledger, PaymentRecord, PaymentState

USDC = 1_000_000  # atomic units in one USDC
NOW = 1_800_000_000.0  # a fixed clock: every test injects `now`
GENEROUS = Caps(per_call=100 * USDC)


def reserve(
    ledger: Ledger,
    amount: int = USDC,
    *,
    caps: Caps = GENEROUS,
    now: float = NOW,
    request_hash: str = "request-1",
    session_id: str | None = None,
) -> PaymentRecord:
    return ledger.reserve(
        request_hash=request_hash,
        amount=amount,
        asset="0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        network="base",
        pay_to="0x000000000000000000000000000000000000dEaD",
        payer="0x1111111111111111111111111111111111111111",
        resource="https://eliza.getimagine.club/generation/create",
        caps=caps,
        session_id=session_id,
        now=now,
    )


def journal(ledger: Ledger, record: PaymentRecord, *, valid_before: int = int(NOW) + 600) -> str:
    """Journal a signed header for ``record`` (as the wallet does just before sending); returns it."""
    header = f"header-of-{record.id}"
    ledger.journal_authorization(record.id, nonce="0x" + record.id, valid_before=valid_before, header=header)
    return header


def in_state(
    ledger: Ledger, state: PaymentState, *, now: float = NOW, request_hash: str = "request-1"
) -> PaymentRecord:
    """A journaled payment brought to ``state`` through legal transitions."""
    record = reserve(ledger, now=now, request_hash=request_hash)
    journal(ledger, record)
    if state is PaymentState.PAID:
        ledger.mark_paid(record.id, task_id=None, transaction="0xabc")
    elif state is PaymentState.REJECTED:
        ledger.mark_rejected(record.id, reason="402: insufficient funds")
    elif state is PaymentState.UNKNOWN:
        ledger.mark_unknown(record.id, reason="timeout after sending")
    elif state is PaymentState.RELEASED:
        ledger.release(record.id, reason="test: provably unsettled")
    elif state is PaymentState.PENDING:
        ledger.mark_pending(record.id, transaction="0x" + "ee" * 32, reason="settlement_pending")
    elif state is PaymentState.CANCELLED:
        ledger.mark_unknown(record.id, reason="timeout after sending")
        ledger.mark_cancelled(record.id, reason="the chain shows the authorization cancelled")
    return ledger.get(record.id)
