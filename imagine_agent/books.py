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

    def freeze(self, reason: str = "") -> None:
        self.operator.set_frozen(True, reason=reason)

    def unfreeze(self) -> None:
        self.operator.set_frozen(False)

    def reconcile(self, now: float | None = None) -> list[PaymentRecord]:
        # IMAGINE_RPC_URL is Base's chain: it says nothing about the sandbox's simulated settlements.
        return reconcile_ledger(self.ledger, None if self.sandbox else self.settings.rpc_url, now)


def reconcile_ledger(ledger: Ledger, rpc_url: str | None, now: float | None = None) -> list[PaymentRecord]:
    """Settle what can be proven, and nothing else.

    Never signed → released. With an RPC (``IMAGINE_RPC_URL``) the chain decides: nonce used → paid;
    unused after validBefore → released. Without one, only a payment the server explicitly rejected
    is released once expired; anything else that expired in flight becomes ``unknown`` (counted as spent).
    """
    from .chain import UsdcChain

    now = time.time() if now is None else now
    chain = UsdcChain(rpc_url) if rpc_url else None
    changed = []
    try:
        for record in ledger.payments(states=[PaymentState.REJECTED, PaymentState.UNKNOWN, PaymentState.RESERVED]):
            expired = record.valid_before is not None and record.valid_before < now
            if record.state == PaymentState.RESERVED and record.header is None:
                if record.created_at > now - SIGNING_GRACE:
                    continue  # a live process may be signing it right now
                ledger.release(record.id, reason="never signed (the process stopped before signing)")
            elif chain is not None and record.nonce is not None:
                if chain.authorization_used(record.asset, record.payer, record.nonce):
                    ledger.mark_paid(record.id, task_id=record.task_id, transaction=None)
                elif expired:
                    ledger.release(record.id, reason="expired, nonce unused on chain")
                else:
                    continue
            elif record.state == PaymentState.REJECTED and expired:
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
