"""With an RPC, the chain decides (issue 22 (b), money-safety rule 9), on a real node.

A server that settles and then answers a believed rejection reason (``invalid_exact_evm_payload_signature``,
to the first send and to the re-send) is not paid again once the authorization's ``validBefore`` passes by
the clock: the payment stays counted until the chain speaks, reconcile runs on its own before a reservation
that would otherwise be refused, and the chain shows the nonce used: paid, once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest

from imagine_agent.books import reconcile_ledger
from imagine_agent.client import AsyncImagineClient, ImagineClient
from imagine_agent.devnet import Devnet
from imagine_agent.errors import PaymentError, PaymentRejectedError
from imagine_agent.ledger import Caps, PaymentState, open_ledger
from imagine_agent.sandbox import SandboxServer
from imagine_agent.service import ImagineService
from imagine_agent.wallet import PaymentPolicy, Wallet
from imagine_agent.x402 import PrivateKeySigner

from ..conftest import FAST_POLL

pytestmark = pytest.mark.e2e
PRICE = 1_000_000
LIAR = {
    "kind": "payment_required_after_settle",
    "params": {"error": "invalid_exact_evm_payload_signature"},
    "times": -1,
}


def wait_past(valid_before: int) -> None:
    """Let the local clock pass ``validBefore`` (the clock is what the no-RPC rule believes)."""
    time.sleep(max(0.0, valid_before - time.time() + 1.5))


def test_a_settled_payment_called_a_bad_signature_is_not_paid_again_past_the_cap(
    devnet: Devnet, chain_sandbox: Callable[..., SandboxServer], make_chain_service: Callable[..., ImagineService]
) -> None:
    """Today: the rejected row is freed by the clock alone, and the same request is signed and paid again,
    2 USDC against a 1.5 USDC daily cap."""
    server = chain_sandbox(max_timeout_seconds=8)
    server.state.add_faults(LIAR)
    service = make_chain_service(server, daily_cap=Decimal("1.5"))
    with pytest.raises(PaymentRejectedError):
        service.generate("settled, then called a bad signature", wait=False)
    (record,) = service.receipts()
    assert record.state == PaymentState.REJECTED and record.valid_before is not None
    assert len(server.state.settlements()) == 1
    wait_past(record.valid_before)
    assert service.budget().totals.daily_used == PRICE  # the clock freed nothing
    with pytest.raises(PaymentError):  # attached to the paid payment, or refused: never a second signature
        service.generate("settled, then called a bad signature", wait=False)
    assert len(server.state.settlements()) == 1  # never paid again
    records = service.receipts()
    assert [r.state for r in records] == [PaymentState.PAID]  # reconcile ran on its own: the chain showed it used
    assert records[0].transaction == server.state.settlements()[0].transaction
    assert service.budget().totals.spent == PRICE


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_both_clients_keep_a_rejected_payment_counted_until_the_chain_speaks(
    flavour: str, devnet: Devnet, chain_sandbox: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    server = chain_sandbox(max_timeout_seconds=8)
    server.state.add_faults(LIAR)
    ledger = open_ledger(tmp_path / "ledger.sqlite3")
    wallet = Wallet(
        PrivateKeySigner(devnet.payers[0].private_key),
        ledger,
        PaymentPolicy(caps=Caps(per_call=5_000_000, daily=1_500_000), networks=frozenset({"base"})),
        chain_decides=True,
        reconcile=partial(reconcile_ledger, ledger, devnet.rpc_url),
    )

    def create() -> None:
        if flavour == "sync":
            with ImagineClient(server.url, wallet=wallet, poll=FAST_POLL) as client:
                client.create("the same request twice", duration=4)
            return

        async def run() -> None:
            async with AsyncImagineClient(server.url, wallet=wallet, poll=FAST_POLL) as client:
                await client.create("the same request twice", duration=4)

        asyncio.run(run())

    with pytest.raises(PaymentRejectedError):
        create()
    (record,) = ledger.payments()
    wait_past(record.valid_before or 0)
    with pytest.raises(PaymentError):
        create()  # today: freed by the clock, signed again, settled again
    assert len(server.state.settlements()) == 1
    assert [r.state for r in ledger.payments()] == [PaymentState.PAID]
    ledger.close()
