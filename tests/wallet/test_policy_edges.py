"""The policy at its exact edges, through the sync (loopback) and async (ASGI) clients.

DESIGN rule 1: amount <= the per-call cap and <= what remains of every window; validity bounded by the
maximum (``maxTimeoutSeconds`` <= ``max_validity_seconds``). Rule 5: payments *above* the approval threshold
wait for a human. So a price equal to the cap, to what remains, or to the threshold is paid without asking,
and a validity equal to the maximum is signed; one atomic unit (or one second) more is refused, nothing signed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from imagine_agent.client import AsyncImagineClient, ImagineClient
from imagine_agent.errors import ApprovalDeniedError, BudgetExceededError, PolicyViolationError
from imagine_agent.ledger import Ledger, PaymentState
from imagine_agent.sandbox import SandboxConfig, SandboxServer, create_app
from imagine_agent.wallet import ApprovalRequest, Wallet

from ..conftest import FAST_POLL, SPEED, CountingSigner

pytestmark = pytest.mark.e2e
PRICE = 1_000_000  # the sandbox's 8 s video, as the spec's 402
VALIDITY = 60  # the sandbox's maxTimeoutSeconds, as the spec's 402
CLIENTS = ["sync", "async"]


def pay(wallet: Wallet, client: str) -> str:
    """One paid create of an 8 s video through the named client; its task id."""
    config = SandboxConfig(announce_sandbox=False, speed=SPEED, max_timeout_seconds=VALIDITY)
    if client == "sync":
        with SandboxServer(config) as server, ImagineClient(server.url, wallet=wallet, poll=FAST_POLL) as c:
            return c.create("a heron at dawn", duration=8).task_id

    async def run() -> str:
        transport = httpx.ASGITransport(app=create_app(config))
        async with AsyncImagineClient("http://sandbox.test", wallet=wallet, transport=transport, poll=FAST_POLL) as c:
            return (await c.create("a heron at dawn", duration=8)).task_id

    return asyncio.run(run())


def paid_once(ledger: Ledger, signer: CountingSigner, task_id: str) -> None:
    (record,) = ledger.payments()
    assert (record.state, record.amount, record.task_id, signer.signed) == (PaymentState.PAID, PRICE, task_id, 1)


@pytest.mark.parametrize("client", CLIENTS)
def test_a_price_exactly_at_the_per_call_cap_is_paid(
    client: str, make_wallet: Callable[..., Wallet], ledger: Ledger, counting_signer: CountingSigner
) -> None:
    paid_once(ledger, counting_signer, pay(make_wallet(per_call=PRICE), client))


@pytest.mark.parametrize("client", CLIENTS)
def test_a_price_one_unit_over_the_per_call_cap_is_refused(
    client: str, make_wallet: Callable[..., Wallet], ledger: Ledger, counting_signer: CountingSigner
) -> None:
    with pytest.raises(BudgetExceededError, match="per-call cap"):
        pay(make_wallet(per_call=PRICE - 1), client)
    assert counting_signer.signed == 0 and ledger.payments() == []


@pytest.mark.parametrize("client", CLIENTS)
def test_a_price_exactly_what_remains_of_the_daily_and_total_caps_is_paid(
    client: str, make_wallet: Callable[..., Wallet], ledger: Ledger, counting_signer: CountingSigner
) -> None:
    paid_once(ledger, counting_signer, pay(make_wallet(per_call=5 * PRICE, daily=PRICE, total=PRICE), client))


@pytest.mark.parametrize("client", CLIENTS)
def test_a_price_exactly_at_the_approval_threshold_is_paid_without_asking(
    client: str, make_wallet: Callable[..., Wallet], ledger: Ledger, counting_signer: CountingSigner
) -> None:
    asked: list[ApprovalRequest] = []
    wallet = make_wallet(approval_threshold=PRICE, approver=lambda request: asked.append(request) or False)
    paid_once(ledger, counting_signer, pay(wallet, client))
    assert asked == []


@pytest.mark.parametrize("client", CLIENTS)
def test_a_price_one_unit_over_the_approval_threshold_asks_a_person(
    client: str, make_wallet: Callable[..., Wallet], ledger: Ledger, counting_signer: CountingSigner
) -> None:
    asked: list[ApprovalRequest] = []
    wallet = make_wallet(approval_threshold=PRICE - 1, approver=lambda request: asked.append(request) or False)
    with pytest.raises(ApprovalDeniedError, match="over the approval threshold"):
        pay(wallet, client)
    assert [a.amount for a in asked] == [PRICE] and counting_signer.signed == 0 and ledger.payments() == []


@pytest.mark.parametrize("client", CLIENTS)
def test_a_validity_exactly_at_the_maximum_is_signed(
    client: str, make_wallet: Callable[..., Wallet], ledger: Ledger, counting_signer: CountingSigner
) -> None:
    paid_once(ledger, counting_signer, pay(make_wallet(max_validity_seconds=VALIDITY), client))
    (record,) = ledger.payments()
    assert record.valid_before is not None and record.valid_before - record.created_at <= VALIDITY + 1


@pytest.mark.parametrize("client", CLIENTS)
def test_a_validity_one_second_over_the_maximum_is_refused(
    client: str, make_wallet: Callable[..., Wallet], ledger: Ledger, counting_signer: CountingSigner
) -> None:
    with pytest.raises(PolicyViolationError, match="stay valid 60 s") as caught:
        pay(make_wallet(max_validity_seconds=VALIDITY - 1), client)
    assert caught.value.code == "validity_too_long" and counting_signer.signed == 0 and ledger.payments() == []
