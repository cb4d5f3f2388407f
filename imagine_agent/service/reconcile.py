"""Reconcile: settle what can be proven about payments in flight, and nothing else (money-safety rule 9)."""

from __future__ import annotations

import time

from ..ledger import Ledger, PaymentRecord, PaymentState

__all__ = ["SIGNING_GRACE", "reconcile_ledger"]

SIGNING_GRACE = 120.0  # seconds a reservation may wait for its signature before it counts as abandoned


def reconcile_ledger(ledger: Ledger, rpc_url: str | None, now: float | None = None) -> list[PaymentRecord]:
    """Settle what can be proven, and nothing else.

    Never signed → released (``now``: the local clock, for that and for the no-RPC rules). With an RPC
    (``IMAGINE_RPC_URL``) the chain decides, after proving it is the right chain with USDC's code there:
    nonce used → paid with its transaction (or cancelled, if ``cancelAuthorization`` used it); unused once
    the latest block's time passed validBefore → released; anything else stays. An RPC error raises and
    changes nothing further. Without an RPC, only a payment the server explicitly rejected is released
    once expired; anything else that expired in flight becomes ``unknown`` (counted as spent).
    """
    from ..chain import UsdcChain, examine
    from ..x402 import decode_payment_header

    now = time.time() if now is None else now
    records = ledger.payments(
        states=[PaymentState.REJECTED, PaymentState.UNKNOWN, PaymentState.RESERVED, PaymentState.PENDING]
    )
    signed = [r for r in records if r.header is not None and r.nonce is not None and r.valid_before is not None]
    signed_ids = {r.id for r in signed}
    chain = UsdcChain(rpc_url) if rpc_url and signed else None
    changed = []
    try:
        if chain is not None:
            for network in sorted({r.network for r in signed}):
                chain.check(network)  # before reading anything: the right chain, USDC's code there
            latest = chain.block()
        for record in records:
            expired = record.valid_before is not None and record.valid_before < now
            if record.state == PaymentState.RESERVED and record.header is None:
                if record.created_at > now - SIGNING_GRACE:
                    continue  # a live process may be signing it right now
                if not ledger.release_unsigned(record.id, reason="never signed (the process stopped before signing)"):
                    continue  # journaled meanwhile: a live signer won the race; it is not ours to free
            elif chain is not None and record.id in signed_ids:
                assert record.header is not None and record.nonce is not None and record.valid_before is not None
                valid_after = int(decode_payment_header(record.header).payload.authorization.valid_after)
                found = examine(
                    chain,
                    asset=record.asset,
                    payer=record.payer,
                    nonce=record.nonce,
                    valid_after=valid_after,
                    valid_before=record.valid_before,
                    transaction=record.transaction,
                    latest=latest,
                )
                if found.outcome == "paid":
                    ledger.mark_paid(
                        record.id, task_id=record.task_id, transaction=found.transaction, reason=found.reason
                    )
                elif found.outcome == "cancelled":
                    if record.state == PaymentState.RESERVED:  # the ledger cancels only what went out
                        ledger.mark_unknown(record.id, reason="journaled when the process stopped")
                    ledger.mark_cancelled(record.id, reason=found.reason)
                elif found.outcome == "released":
                    ledger.release(record.id, reason=found.reason)
                else:
                    continue
            elif record.state == PaymentState.REJECTED and expired:
                # Seam (rule 1): only a credible named failure is ``rejected`` (outcomes.classify); with
                # an RPC the branch above has already asked the chain. The ledger also auto-releases it.
                ledger.release(record.id, reason="rejected by the server and expired unsettled")
            elif record.state == PaymentState.RESERVED and expired:
                ledger.mark_unknown(record.id, reason="in flight when the process stopped; expired")
            else:
                continue
            changed.append(ledger.get(record.id))
    finally:
        if chain is not None:
            chain.close()
    return changed
