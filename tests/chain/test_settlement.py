"""Payments settle on Circle's real USDC contract: exactly the price moves, a nonce settles once, and every
refusal (expired, not yet valid, insufficient balance, cancelled) ends in the documented ledger state."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from imagine_agent.chain import AUTHORIZATION_USED
from imagine_agent.client import AsyncImagineClient, ImagineClient
from imagine_agent.devnet import Devnet, _encode
from imagine_agent.errors import PaymentRejectedError, PaymentStateUnknownError, PolicyViolationError
from imagine_agent.ledger import Caps, PaymentState, open_ledger
from imagine_agent.sandbox import SandboxServer
from imagine_agent.sandbox.config import IMAGINE_PAY_TO
from imagine_agent.service import ImagineService
from imagine_agent.wallet import PaymentPolicy, Wallet
from imagine_agent.x402 import NETWORKS, PrivateKeySigner, decode_payment_header
from tests.conftest import FAST_POLL

pytestmark = pytest.mark.e2e
USDC = NETWORKS["base"].usdc
PRICE = 1_000_000  # 8 s at the sandbox's 125000/s


def used_logs(devnet: Devnet, payer: str) -> list[dict[str, object]]:
    topic = "0x" + payer.lower().removeprefix("0x").rjust(64, "0")
    logs: list[dict[str, object]] = devnet.rpc(
        "eth_getLogs",
        [{"address": USDC, "fromBlock": "0x0", "toBlock": "latest", "topics": [AUTHORIZATION_USED, topic]}],
    )
    return logs


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_paid_generation_moves_exactly_the_price_on_chain(
    mode: str, devnet: Devnet, chain_sandbox: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    server = chain_sandbox()
    assert devnet.relayer.private_key.removeprefix("0x") not in repr(server.state.config) + repr(server.state.chain)
    payer = devnet.payers[0]
    ledger = open_ledger(f"{tmp_path}/ledger.sqlite3")
    wallet = Wallet(
        PrivateKeySigner(payer.private_key),
        ledger,
        PaymentPolicy(caps=Caps(per_call=5_000_000, daily=None, total=None)),
    )
    before_payer, before_payee = devnet.balance(payer.address), devnet.balance(IMAGINE_PAY_TO)
    if mode == "sync":
        with ImagineClient(server.url, wallet=wallet, poll=FAST_POLL) as client:
            job = client.create("a lighthouse at dawn")
    else:
        async with AsyncImagineClient(server.url, wallet=wallet, poll=FAST_POLL) as aclient:
            job = await aclient.create("a lighthouse at dawn")  # type: ignore[assignment]
    assert job.payment is not None
    assert devnet.balance(payer.address) == before_payer - PRICE
    assert devnet.balance(IMAGINE_PAY_TO) == before_payee + PRICE
    (record,) = ledger.payments()
    assert record.state == PaymentState.PAID and record.nonce is not None
    assert devnet.chain.authorization_used(USDC, payer.address, record.nonce)
    receipt = devnet.chain.receipt(job.payment.transaction or "")
    assert receipt is not None and devnet.chain.receipt_uses(receipt, USDC, payer.address, record.nonce)
    assert record.transaction == job.payment.transaction
    ledger.close()


def test_the_same_header_resent_after_a_lost_answer_settles_once(
    devnet: Devnet, chain_sandbox: Callable[..., SandboxServer], make_chain_service: Callable[..., ImagineService]
) -> None:
    server = chain_sandbox()
    service = make_chain_service(server)
    payer = devnet.payers[0].address
    before = devnet.balance(payer)
    server.state.add_faults({"kind": "drop_after_payment"})  # settles on chain, then the answer is lost
    outcome = service.generate("a lost answer", wait=False)  # the client re-sends the same header, once
    assert server.state.armed_faults() == []  # the first answer really was dropped
    (record,) = service.receipts()
    assert outcome.payment is not None and outcome.payment.payment_id == record.id
    assert devnet.balance(payer) == before - PRICE  # once, not twice
    assert len(used_logs(devnet, payer)) == 1
    assert record.state == PaymentState.PAID and record.transaction == used_logs(devnet, payer)[0]["transactionHash"]


def test_an_expired_authorization_never_settles_and_is_released_by_block_time(
    devnet: Devnet, chain_sandbox: Callable[..., SandboxServer], make_chain_service: Callable[..., ImagineService]
) -> None:
    server = chain_sandbox()
    service = make_chain_service(server)
    payer = devnet.payers[0].address
    before = devnet.balance(payer)
    devnet.advance(3600)  # the chain's clock is past any validBefore signed now: USDC says "expired"
    with pytest.raises((PaymentRejectedError, PaymentStateUnknownError)) as caught:
        service.generate("too late for the chain", wait=False)
    assert "valid_before" in str(caught.value) or isinstance(caught.value, PaymentStateUnknownError)
    (record,) = service.receipts()
    assert record.state in (PaymentState.REJECTED, PaymentState.UNKNOWN)
    assert devnet.balance(payer) == before
    assert record.nonce is not None and not devnet.chain.authorization_used(USDC, payer, record.nonce)
    (released,) = service.reconcile()  # block time is past validBefore, the nonce unused: provably dead
    assert released.state == PaymentState.RELEASED and "block time" in (released.reason or "")
    assert service.budget().totals.spent == 0


def test_a_not_yet_valid_authorization_is_refused_by_the_contract(
    devnet: Devnet, chain_sandbox: Callable[..., SandboxServer], make_chain_service: Callable[..., ImagineService]
) -> None:
    ahead = 3600.0  # the sandbox and the wallet both run an hour ahead of the chain
    server = chain_sandbox(clock=lambda: time.time() + ahead)
    service = make_chain_service(server)
    service.wallet.clock = lambda: time.time() + ahead
    payer = devnet.payers[0].address
    before = devnet.balance(payer)
    with pytest.raises((PaymentRejectedError, PaymentStateUnknownError)) as caught:
        service.generate("too early for the chain", wait=False)
    assert "valid_after" in str(caught.value) or isinstance(caught.value, PaymentStateUnknownError)
    (record,) = service.receipts()
    assert record.state in (PaymentState.REJECTED, PaymentState.UNKNOWN)
    assert devnet.balance(payer) == before
    assert service.reconcile() == []  # unused, but still valid by block time: it could settle later
    devnet.advance(int(ahead) + 2000)
    (released,) = service.reconcile()
    assert released.state == PaymentState.RELEASED


def test_insufficient_balance_is_refused_before_signing_with_an_rpc(
    devnet: Devnet, chain_sandbox: Callable[..., SandboxServer], make_chain_service: Callable[..., ImagineService]
) -> None:
    server = chain_sandbox()
    poor = PrivateKeySigner.generate()
    devnet.mint(poor.address, PRICE - 1)
    service = make_chain_service(server, key=poor.export_private_key())
    with pytest.raises(PolicyViolationError) as caught:
        service.generate("costs more than I hold", wait=False)
    assert str(caught.value).startswith(
        "the wallet holds 0.999999 USDC, the video costs 1.000000 USDC: nothing was signed"
    )
    assert getattr(caught.value, "code", None) == "insufficient_balance"
    assert service.receipts() == []  # nothing reserved, nothing signed
    assert devnet.balance(poor.address) == PRICE - 1


def test_insufficient_balance_without_preflight_is_refused_by_the_facilitator(
    devnet: Devnet, chain_sandbox: Callable[..., SandboxServer], make_chain_service: Callable[..., ImagineService]
) -> None:
    server = chain_sandbox()
    poor = PrivateKeySigner.generate()
    devnet.mint(poor.address, PRICE - 1)
    service = make_chain_service(server, key=poor.export_private_key(), rpc=False)
    with pytest.raises(PaymentRejectedError, match="insufficient_funds"):
        service.generate("the facilitator reads the chain", wait=False)
    (record,) = service.receipts()
    assert record.state == PaymentState.REJECTED
    assert devnet.balance(poor.address) == PRICE - 1
    assert record.nonce is not None and not devnet.chain.authorization_used(USDC, poor.address, record.nonce)
    assert record.valid_before is not None
    service.settings.rpc_url = devnet.rpc_url  # now reconcile has a chain: only block time may release it
    assert service.reconcile(now=record.valid_before + 3600) == []
    devnet.advance(record.valid_before - devnet.chain.block().timestamp + 1)
    (released,) = service.reconcile()
    assert released.state == PaymentState.RELEASED and "nonce unused on chain" in (released.reason or "")


def cancel_on_chain(devnet: Devnet, private_key: str, nonce: str) -> str:
    """The payer cancels its authorization (EIP-3009 cancelAuthorization); the devnet owner sends it."""
    from eth_account import Account

    signer = Account.from_key(private_key)
    net = devnet.network
    typed = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "CancelAuthorization": [{"name": "authorizer", "type": "address"}, {"name": "nonce", "type": "bytes32"}],
        },
        "primaryType": "CancelAuthorization",
        "domain": {
            "name": net.usdc_name,
            "version": net.usdc_version,
            "chainId": net.chain_id,
            "verifyingContract": net.usdc,
        },
        "message": {"authorizer": signer.address, "nonce": bytes.fromhex(nonce[2:])},
    }
    signed = Account.sign_typed_data(private_key, full_message=typed)
    owner = devnet.rpc("eth_accounts", [])[0]
    data = _encode(
        "cancelAuthorization(address,bytes32,uint8,bytes32,bytes32)",
        signer.address,
        bytes.fromhex(nonce[2:]),
        signed.v,
        signed.r.to_bytes(32, "big"),
        signed.s.to_bytes(32, "big"),
    )
    return str(devnet.send(owner, net.usdc, data)["transactionHash"])


def test_a_cancelled_authorization_is_recorded_as_cancelled(
    devnet: Devnet, chain_sandbox: Callable[..., SandboxServer], make_chain_service: Callable[..., ImagineService]
) -> None:
    server = chain_sandbox()
    service = make_chain_service(server)
    server.state.add_faults({"kind": "error_before_settle", "times": -1})
    with pytest.raises(PaymentStateUnknownError):
        service.generate("cancel me", wait=False)
    (record,) = service.receipts()
    assert record.nonce is not None
    tx = cancel_on_chain(devnet, devnet.payers[0].private_key, record.nonce)
    (cancelled,) = service.reconcile()
    assert cancelled.state == PaymentState.CANCELLED
    assert tx in (cancelled.reason or "") and "AuthorizationCanceled" in (cancelled.reason or "")
    assert service.budget().totals.unknown == 0 and service.budget().totals.spent == 0
    server.state.clear_faults()
    assert cancelled.header is not None
    payment = decode_payment_header(cancelled.header)
    verdict, settlement = server.state.settle(payment, server.state.requirement(cancelled.resource, cancelled.amount))
    assert settlement is None and verdict.reason == "nonce_already_used"  # the chain says used-or-cancelled
    assert devnet.balance(devnet.payers[0].address) == 100_000_000  # the cancelled header never moved money


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_the_balance_preflight_guards_both_clients(
    mode: str, devnet: Devnet, chain_sandbox: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    from imagine_agent.chain import UsdcChain

    server = chain_sandbox()
    poor = PrivateKeySigner.generate()
    devnet.mint(poor.address, 250_000)
    ledger = open_ledger(tmp_path / "ledger.sqlite3")
    with UsdcChain(devnet.rpc_url) as chain:
        wallet = Wallet(
            poor,
            ledger,
            PaymentPolicy(caps=Caps(per_call=5_000_000, daily=None, total=None)),
            balance_of=chain.usdc_balance,
        )
        with pytest.raises(PolicyViolationError, match=re.escape("holds 0.250000 USDC, the video costs 1.000000 USDC")):
            if mode == "sync":
                with ImagineClient(server.url, wallet=wallet, poll=FAST_POLL) as client:
                    client.create("too dear")
            else:
                async with AsyncImagineClient(server.url, wallet=wallet, poll=FAST_POLL) as aclient:
                    await aclient.create("too dear")
    assert ledger.payments() == []
    assert devnet.balance(poor.address) == 250_000
    ledger.close()
