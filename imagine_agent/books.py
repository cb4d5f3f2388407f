"""The operator's books: budget, receipts, reconcile and the kill switch, straight from the ledger.

No key, no password and no server: these act on ``IMAGINE_LEDGER_URL`` (or the data dir's SQLite)
whether or not ``IMAGINE_BASE_URL`` is set (money-safety rule 8). ``sandbox=True`` reads the sandbox's own
ledger instead (demo money); the kill switch always lives in the operator's ledger and stops both.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace

from .config import Settings
from .errors import ConfigurationError
from .ledger import Ledger, PaymentRecord, PaymentState, open_ledger
from .service import SIGNING_GRACE, BudgetReport, policy_from, public_address, sandbox_ledger_location

__all__ = ["Books", "reconcile_ledger"]


class Books:
    """One open view of the operator's (or the sandbox's) ledger. Close it, or use it as a context manager."""

    def __init__(self, settings: Settings, *, sandbox: bool = False, address: str | None = None) -> None:
        self.settings = settings
        self.sandbox = sandbox
        self._address = address
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            self.operator: Ledger = open_ledger(settings.ledger_location)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(f"cannot open the ledger in {settings.data_dir} (IMAGINE_DATA_DIR / "
                                     f"IMAGINE_LEDGER_URL): {exc}") from None
        try:
            self.ledger: Ledger = open_ledger(sandbox_ledger_location(settings)) if sandbox else self.operator
        except BaseException as exc:
            self.operator.close()
            if isinstance(exc, OSError | sqlite3.Error):
                raise ConfigurationError(f"cannot open the sandbox ledger in {settings.data_dir}: {exc}") from None
            raise

    def close(self) -> None:
        if self.ledger is not self.operator:
            self.ledger.close()
        self.operator.close()

    def __enter__(self) -> Books:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def address(self) -> str:
        """``--address``, else the configured key or keystore's public address, else the newest payer."""
        if self._address:
            return self._address
        if not self.sandbox:
            known = public_address(self.settings)
            if known:
                return known
        newest = self.ledger.payments(limit=1)
        return newest[0].payer if newest else "unknown"

    def budget(self) -> BudgetReport:
        policy = policy_from(self.settings)
        # The real windows of the operator's ledger, or the sandbox windows of the sandbox's ledger.
        totals = self.ledger.totals(policy.caps, sandbox=self.sandbox)
        if not totals.frozen and self.operator.is_frozen():
            totals = replace(totals, frozen=True)
        return BudgetReport(totals, policy.caps, policy.approval_threshold, self.address, sandbox=self.sandbox)

    def receipts(self, limit: int | None = None) -> list[PaymentRecord]:
        return self.ledger.payments(limit=limit)

    def freeze(self, reason: str = "", *, source: str = "operator") -> None:
        self.operator.set_frozen(True, reason=reason, source=source)  # audited by the ledger, naming the surface

    def unfreeze(self, *, source: str = "operator") -> None:
        self.operator.set_frozen(False, source=source)

    def reconcile(self, now: float | None = None) -> list[PaymentRecord]:
        # IMAGINE_RPC_URL is Base's chain: it says nothing about the sandbox's simulated settlements.
        return reconcile_ledger(self.ledger, None if self.sandbox else self.settings.rpc_url, now)


def reconcile_ledger(ledger: Ledger, rpc_url: str | None, now: float | None = None) -> list[PaymentRecord]:
    """Settle what can be proven, and nothing else.

    Never signed → released (``now``: the local clock, for that and for the no-RPC rules). With an RPC
    (``IMAGINE_RPC_URL``) the chain decides, after proving it is the right chain with USDC's code there:
    nonce used → paid with its transaction (or cancelled, if ``cancelAuthorization`` used it); unused once
    the latest block's time passed validBefore → released; anything else stays. An RPC error raises and
    changes nothing further. Without an RPC, only a payment the server explicitly rejected is released
    once expired; anything else that expired in flight becomes ``unknown`` (counted as spent).
    """
    from .chain import UsdcChain, examine
    from .x402 import decode_payment_header

    now = time.time() if now is None else now
    records = ledger.payments(states=[PaymentState.REJECTED, PaymentState.UNKNOWN,
                                      PaymentState.RESERVED, PaymentState.PENDING])
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
                found = examine(chain, asset=record.asset, payer=record.payer, nonce=record.nonce,
                                valid_after=valid_after, valid_before=record.valid_before,
                                transaction=record.transaction, latest=latest)
                if found.outcome == "paid":
                    ledger.mark_paid(record.id, task_id=record.task_id, transaction=found.transaction,
                                     reason=found.reason)
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
