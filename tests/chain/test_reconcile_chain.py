"""Reconcile against a real node: used nonces become paid with their transaction, unsettled ones are released
only after validBefore by block time, cancelled ones are cancelled, and a wrong chain changes nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from imagine_agent.devnet import Devnet
from imagine_agent.errors import ConfigurationError, PaymentStateUnknownError, ProtocolError
from imagine_agent.ledger import PaymentState
from imagine_agent.sandbox import SandboxServer
from imagine_agent.service import ImagineService
from imagine_agent.x402 import NETWORKS

pytestmark = pytest.mark.e2e
PRICE = 1_000_000


def test_reconcile_marks_an_unknown_payment_paid_with_its_transaction(
    devnet: Devnet, chain_sandbox: Callable[..., SandboxServer], make_chain_service: Callable[..., ImagineService]
) -> None:
    server = chain_sandbox(idempotent_replay=False)  # a naive server: the retry gets "nonce already used"
    service = make_chain_service(server)
    server.state.add_faults({"kind": "error_after_settle"})
    with pytest.raises(PaymentStateUnknownError):
        service.generate("settled, answer lost", wait=False)
    (record,) = service.receipts()
    assert record.state == PaymentState.UNKNOWN and record.transaction is None
    (settled,) = server.state.settlements()
    (paid,) = service.reconcile()
    assert paid.state == PaymentState.PAID
    assert paid.transaction == settled.transaction  # the real hash, read from the AuthorizationUsed log
    assert "AuthorizationUsed" in (paid.reason or "") and settled.transaction in (paid.reason or "")
    assert service.budget().totals.unknown == 0 and service.budget().totals.spent == PRICE


def test_reconcile_releases_an_unsettled_payment_only_after_valid_before_by_block_time(
    devnet: Devnet, chain_sandbox: Callable[..., SandboxServer], make_chain_service: Callable[..., ImagineService]
) -> None:
    server = chain_sandbox()
    service = make_chain_service(server)
    server.state.add_faults({"kind": "error_before_settle", "times": -1})
    with pytest.raises(PaymentStateUnknownError):
        service.generate("never settled", wait=False)
    (record,) = service.receipts()
    assert record.valid_before is not None
    assert service.reconcile() == []
    assert service.reconcile(now=record.valid_before + 3600) == []  # the local clock alone proves nothing
    devnet.rpc("evm_mine", [])  # the latest block must be now, not the snapshot's (which may be a minute old)
    devnet.advance(record.valid_before - devnet.chain.block().timestamp - 5)
    assert service.reconcile() == []  # the latest block is still before validBefore
    devnet.advance(10)
    (released,) = service.reconcile()
    assert released.state == PaymentState.RELEASED
    assert "block time" in (released.reason or "") and str(record.valid_before) in (released.reason or "")
    assert service.budget().totals.unknown == 0


def test_a_pending_payment_is_reconciled_by_its_receipt(
    devnet: Devnet, chain_sandbox: Callable[..., SandboxServer], make_chain_service: Callable[..., ImagineService]
) -> None:
    server = chain_sandbox(idempotent_replay=False)
    service = make_chain_service(server)
    server.state.add_faults({"kind": "error_after_settle"})
    with pytest.raises(PaymentStateUnknownError):
        service.generate("settlement pending", wait=False)
    (record,) = service.receipts()
    (settled,) = server.state.settlements()
    # What a server answering settlement_pending with the hash leaves in the ledger:
    service.ledger.mark_pending(record.id, transaction=settled.transaction, reason="settlement_pending")
    (paid,) = service.reconcile()
    assert paid.state == PaymentState.PAID and paid.transaction == settled.transaction
    assert f"tx {settled.transaction}" in (paid.reason or "")


def test_a_wrong_chain_rpc_changes_nothing(
    devnet: Devnet, chain_sandbox: Callable[..., SandboxServer], make_chain_service: Callable[..., ImagineService]
) -> None:
    server = chain_sandbox(idempotent_replay=False)
    service = make_chain_service(server)
    server.state.add_faults({"kind": "error_after_settle"})
    with pytest.raises(PaymentStateUnknownError):
        service.generate("settled on base", wait=False)
    (record,) = service.receipts()
    with Devnet("base-sepolia", payers=0) as sepolia:  # chain 84532, while the payment is on base (8453)
        service.settings.rpc_url = sepolia.rpc_url.replace("http://", "http://user:SECRET@") + "/?token=SECRET"
        with pytest.raises(ConfigurationError, match="chain 84532, not base") as caught:
            service.reconcile()
        assert "SECRET" not in str(caught.value)
    assert service.ledger.get(record.id).state == PaymentState.UNKNOWN


def test_an_rpc_without_usdc_code_changes_nothing(
    devnet: Devnet, chain_sandbox: Callable[..., SandboxServer], make_chain_service: Callable[..., ImagineService]
) -> None:
    server = chain_sandbox()
    service = make_chain_service(server)
    server.state.add_faults({"kind": "error_before_settle", "times": -1})
    with pytest.raises(PaymentStateUnknownError):
        service.generate("no contract there", wait=False)
    (record,) = service.receipts()
    assert record.valid_before is not None
    devnet.advance(record.valid_before - devnet.chain.block().timestamp + 10)  # expired by block time...
    devnet.rpc("anvil_setCode", [NETWORKS["base"].usdc, "0x"])  # ...but no USDC here: "0x" is not "unused"
    with pytest.raises(ConfigurationError, match="no contract code"):
        service.reconcile()
    assert service.ledger.get(record.id).state == PaymentState.UNKNOWN


def test_a_chain_settling_sandbox_does_not_imitate_a_chain(
    devnet: Devnet, chain_sandbox: Callable[..., SandboxServer], make_chain_service: Callable[..., ImagineService]
) -> None:
    server = chain_sandbox(idempotent_replay=False)
    service = make_chain_service(server)
    server.state.add_faults({"kind": "error_after_settle"})
    with pytest.raises(PaymentStateUnknownError):
        service.generate("read the real node", wait=False)
    service.settings.rpc_url = server.url + "/rpc"  # the toy RPC refuses: it would only echo the sandbox
    with pytest.raises(ProtocolError, match="settles on"):
        service.reconcile()
    assert [r.state for r in service.receipts()] == [PaymentState.UNKNOWN]


def test_an_authorization_cancelled_after_it_expired_is_recorded_as_cancelled(
    devnet: Devnet, chain_sandbox: Callable[..., SandboxServer], make_chain_service: Callable[..., ImagineService]
) -> None:
    from .test_settlement import cancel_on_chain

    server = chain_sandbox()
    service = make_chain_service(server)
    server.state.add_faults({"kind": "error_before_settle", "times": -1})
    with pytest.raises(PaymentStateUnknownError):
        service.generate("cancelled late", wait=False)
    (record,) = service.receipts()
    assert record.nonce is not None and record.valid_before is not None
    devnet.advance(record.valid_before - devnet.chain.block().timestamp + 60)
    for _ in range(3):
        devnet.rpc("evm_mine", [])  # blocks between validBefore and the cancellation
    tx = cancel_on_chain(devnet, devnet.payers[0].private_key, record.nonce)
    (cancelled,) = service.reconcile()
    assert cancelled.state == PaymentState.CANCELLED and tx in (cancelled.reason or "")
