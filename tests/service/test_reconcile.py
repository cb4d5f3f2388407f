"""Reconcile releases only what is proven unsettled: the chain (JSON-RPC) or an explicit, expired rejection."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from imagine_agent.config import Settings
from imagine_agent.errors import PaymentRejectedError, PaymentStateUnknownError
from imagine_agent.ledger import PaymentState
from imagine_agent.sandbox import SandboxConfig, SandboxServer
from imagine_agent.service import ImagineService

from ..conftest import FAST_POLL_SETTINGS

pytestmark = pytest.mark.e2e
KEY = "0x" + "3c" * 32


def service_for(server: SandboxServer, tmp_path: Path, *, rpc: bool) -> ImagineService:
    settings = Settings(
        base_url=server.url,
        private_key=KEY,
        data_dir=tmp_path,
        **FAST_POLL_SETTINGS,
        rpc_url=f"{server.url}/rpc" if rpc else None,
    )
    return ImagineService.create(settings)


def test_rpc_proves_a_lost_answer_was_paid(tmp_path: Path) -> None:
    with (
        SandboxServer(SandboxConfig(announce_sandbox=False, speed=600, idempotent_replay=False)) as server,
        service_for(server, tmp_path, rpc=True) as service,
    ):
        server.state.add_faults({"kind": "error_after_settle"})
        with pytest.raises(PaymentStateUnknownError):
            service.generate("answer lost", wait=False)
        (record,) = service.receipts()
        assert record.state == PaymentState.UNKNOWN
        changed = service.reconcile()
        assert [r.state for r in changed] == [PaymentState.PAID]
        (settled,) = server.state.settlements()
        assert changed[0].transaction == settled.transaction  # from the AuthorizationUsed log
        assert "AuthorizationUsed" in (changed[0].reason or "")
        assert service.budget().totals.unknown == 0 and service.budget().totals.spent == record.amount


def test_rpc_releases_an_unsettled_payment_only_after_expiry_by_block_time(tmp_path: Path) -> None:
    skew = [0.0]  # the sandbox's clock is its chain's block time
    config = SandboxConfig(announce_sandbox=False, speed=600, clock=lambda: time.time() + skew[0])
    with SandboxServer(config) as server, service_for(server, tmp_path, rpc=True) as service:
        server.state.add_faults({"kind": "error_before_settle", "times": -1})
        with pytest.raises(PaymentStateUnknownError):
            service.generate("never settled", wait=False)
        (record,) = service.receipts()
        assert service.reconcile() == []  # still valid: it could still settle
        # The local clock alone proves nothing: the chain's latest block is still before validBefore.
        assert service.reconcile(now=(record.valid_before or 0) + 1) == []
        skew[0] = (record.valid_before or 0) - time.time() + 1
        (released,) = service.reconcile()
        assert released.state == PaymentState.RELEASED and "unused on chain" in (released.reason or "")
        assert "validBefore" in (released.reason or "")
        assert service.budget().totals.unknown == 0
        assert server.state.settlements() == []


def test_without_rpc_unknown_stays_unknown_and_rejected_expires(tmp_path: Path) -> None:
    with (
        SandboxServer(SandboxConfig(announce_sandbox=False, speed=600, default_balance=0)) as server,
        service_for(server, tmp_path, rpc=False) as service,
    ):
        with pytest.raises(PaymentRejectedError, match="insufficient_funds"):
            service.generate("no funds", wait=False)
        with pytest.raises(PaymentRejectedError, match="Try again in"):
            service.generate("no funds", wait=False)  # same request: no second signature while the first is valid
        (rejected,) = service.receipts()
        server.state.fund(service.wallet.address, 10_000_000)
        server.state.add_faults({"kind": "error_before_settle", "times": -1})
        with pytest.raises(PaymentStateUnknownError):
            service.generate("unknown one", wait=False)
        later = max(p.valid_before or 0 for p in service.receipts()) + 1
        changed = {r.id: r.state for r in service.reconcile(now=later)}
        assert changed == {rejected.id: PaymentState.RELEASED}
        assert service.budget().totals.unknown == 1_000_000


@pytest.mark.parametrize("x402", ["v1", "v2"])
def test_settlement_pending_counts_as_spent_until_the_chain_shows_it_paid(tmp_path: Path, x402: str) -> None:
    """Issue 13.1: ``settlement_pending`` with a transaction is journaled pending (never failed, never
    released, never paid again) and reconciled from the chain, keeping that transaction."""
    with (
        SandboxServer(SandboxConfig(speed=600, x402=x402)) as server,
        service_for(server, tmp_path, rpc=True) as service,
    ):
        server.state.add_faults({"kind": "settlement_pending"})
        with pytest.raises(PaymentStateUnknownError, match="journaled as pending"):
            service.generate("pending on chain", wait=False)
        (record,) = service.receipts()
        assert record.state == PaymentState.PENDING and record.transaction == server.state.settlements()[0].transaction
        assert service.budget().totals.unknown == record.amount  # counted as spent
        with pytest.raises(PaymentStateUnknownError, match="pending"):
            service.generate("pending on chain", wait=False)  # the same request is not paid again
        assert len(server.state.settlements()) == 1
        changed = service.reconcile()
        assert [(r.state, r.transaction) for r in changed] == [(PaymentState.PAID, record.transaction)]
        assert service.budget().totals.spent == record.amount and service.budget().totals.unknown == 0
