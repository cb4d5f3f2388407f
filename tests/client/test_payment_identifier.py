"""One x402 v2 ``payment-identifier`` per signature (issue 22 (a), money-safety rule 9).

Against the sandbox, which keeps ids as the extension asks (same id, different payment: 409): a second
wallet buying the same prompt, and the same wallet buying a request again after its job finished, are both
paid once, each under its own id. A 409 to a first send is a clear rejection of that payment alone; a 409 to
a re-send of the same header stays ``unknown``. Sync and async clients alike.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from imagine_agent.client import AsyncImagineClient, ImagineClient
from imagine_agent.errors import PaymentRejectedError, PaymentStateUnknownError
from imagine_agent.ledger import Caps, Ledger, PaymentState, open_ledger
from imagine_agent.sandbox import SandboxConfig, SandboxServer
from imagine_agent.sandbox.paywall import payment_required_v2
from imagine_agent.wallet import PaymentPolicy, Wallet

from ..conftest import FAST_POLL, SPEED, CountingSigner

pytestmark = pytest.mark.e2e

API = "https://api.imagine.example"


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


_LOOPS: dict[int, asyncio.AbstractEventLoop] = {}


def make_client(mode: str, url: str, wallet: Wallet, **options: Any) -> Any:
    if mode == "sync":
        return ImagineClient(url, wallet=wallet, poll=FAST_POLL, **options)
    loop = asyncio.new_event_loop()
    client = AsyncImagineClient(url, wallet=wallet, poll=FAST_POLL, **options)
    _LOOPS[id(client)] = loop
    return client


def call(mode: str, client: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call a client method the way its flavour needs (the async one on its own event loop)."""
    result = getattr(client, name)(*args, **kwargs)
    return result if mode == "sync" else _LOOPS[id(client)].run_until_complete(result)


def close(mode: str, client: Any) -> None:
    if mode == "sync":
        client.close()
    else:
        loop = _LOOPS.pop(id(client))
        loop.run_until_complete(client.aclose())
        loop.close()


def wallet_on(
    ledger: Ledger, signer: CountingSigner | None = None, *, clock: Callable[[], float] | None = None, **extra: Any
) -> Wallet:
    policy = PaymentPolicy(caps=Caps(per_call=5_000_000, daily=20_000_000), **extra)
    wallet = Wallet(signer or CountingSigner(), ledger, policy)
    if clock is not None:
        wallet.clock = clock
    return wallet


def ids_sent(requests: list[httpx.Request]) -> list[str]:
    found = []
    for r in requests:
        if "payment-signature" in r.headers:
            payment = json.loads(base64.b64decode(r.headers["payment-signature"]))
            found.append(payment["extensions"]["payment-identifier"]["info"]["id"])
    return found


@pytest.fixture
def v2_sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(speed=SPEED, x402="v2")) as server:
        yield server


def test_two_wallets_buying_the_same_prompt_are_each_paid_once(
    mode: str, v2_sandbox: SandboxServer, ledger: Ledger, tmp_path: Path
) -> None:
    """The id was the request's: the second wallet's payment came under the first one's id, got 409 and was
    recorded unknown (spent, and every later identical request of that wallet blocked)."""
    other_ledger = open_ledger(tmp_path / "other.sqlite3")
    clients = [make_client(mode, v2_sandbox.url, wallet_on(led)) for led in (ledger, other_ledger)]
    sent: list[httpx.Request] = []
    for c in clients:
        c.http.event_hooks["request"].append(sent.append if mode == "sync" else _async_note(sent))
    try:
        jobs = [call(mode, c, "create", "a lighthouse in fog", duration=4) for c in clients]
    finally:
        for c in clients:
            close(mode, c)
    assert len({j.task_id for j in jobs}) == 2 and len(v2_sandbox.state.settlements()) == 2
    for led in (ledger, other_ledger):
        assert [p.state for p in led.payments()] == [PaymentState.PAID]
    ids = ids_sent(sent)
    assert len(ids) == 2 and ids[0] != ids[1]
    other_ledger.close()


def test_buying_a_request_again_after_its_job_finished_signs_under_a_new_id(
    mode: str, v2_sandbox: SandboxServer, ledger: Ledger
) -> None:
    client = make_client(mode, v2_sandbox.url, wallet_on(ledger))
    sent: list[httpx.Request] = []
    client.http.event_hooks["request"].append(sent.append if mode == "sync" else _async_note(sent))
    try:
        first = call(mode, client, "create", "a kettle whistling", duration=4)
        ledger.upsert_task(first.task_id, status="completed")  # finished: the same request buys a new video
        second = call(mode, client, "create", "a kettle whistling", duration=4)
    finally:
        close(mode, client)
    assert first.task_id != second.task_id and len(v2_sandbox.state.settlements()) == 2
    assert [p.state for p in ledger.payments()] == [PaymentState.PAID, PaymentState.PAID]
    ids = ids_sent(sent)
    assert len(ids) == 2 and ids[0] != ids[1]


def conflict_server(answers: list[int]) -> tuple[httpx.MockTransport, httpx.AsyncBaseTransport, list[httpx.Request]]:
    """A v2 server declaring ``payment-identifier`` whose paid answers are ``answers`` in turn (409 and 5xx)."""
    config = SandboxConfig(x402="v2", announce_sandbox=False)
    paid: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if "payment-signature" in request.headers:
            paid.append(request)
            status = answers[min(len(paid), len(answers)) - 1]
            return httpx.Response(status, json={"error": "payment-identifier already used with a different payment"})
        required = payment_required_v2(
            config, resource=f"{API}/generation/create", amount=250_000, error="PAYMENT-SIGNATURE header is required"
        )
        header = base64.b64encode(json.dumps(required).encode()).decode()
        return httpx.Response(402, json={}, headers={"PAYMENT-REQUIRED": header})

    async def ahandle(request: httpx.Request) -> httpx.Response:
        return handle(request)

    return httpx.MockTransport(handle), httpx.MockTransport(ahandle), paid


def test_a_409_to_a_first_send_is_a_clear_rejection_that_blocks_nothing_later(mode: str, ledger: Ledger) -> None:
    """Today: ``unknown`` (spent, never released without an RPC) and every later identical request blocked."""
    now = [1_800_000_000.0]
    sync_t, async_t, paid = conflict_server([409])
    client = make_client(
        mode,
        API,
        wallet_on(ledger, clock=lambda: now[0]),
        transport=sync_t if mode == "sync" else async_t,
        clock=lambda: now[0],
    )
    try:
        with pytest.raises(PaymentRejectedError, match="409") as caught:
            call(mode, client, "create", "a harbour at dusk", duration=4)
        assert "payment-identifier pay_" in str(caught.value)
        (record,) = ledger.payments()
        assert record.state == PaymentState.REJECTED and len(paid) == 1  # never re-sent: the answer would not change
        assert ledger.totals(Caps(per_call=5_000_000), now=now[0]).reserved == 250_000  # held while it could settle
        now[0] = float(record.valid_before or 0) + 1  # the authorization expired unsettled
        with pytest.raises(PaymentRejectedError):  # a later identical request is signed and sent again
            call(mode, client, "create", "a harbour at dusk", duration=4)
    finally:
        close(mode, client)
    assert len(paid) == 2 and ids_sent(paid)[0] != ids_sent(paid)[1]
    first = ledger.get(record.id)
    assert first.state == PaymentState.RELEASED  # freed only what it had reserved, once it could not settle
    assert ledger.totals(Caps(per_call=5_000_000), now=now[0]).spent == 0


def test_a_409_to_a_re_send_of_the_same_header_stays_unknown(mode: str, ledger: Ledger) -> None:
    sync_t, async_t, paid = conflict_server([502, 409])
    client = make_client(mode, API, wallet_on(ledger), transport=sync_t if mode == "sync" else async_t)
    try:
        with pytest.raises(PaymentStateUnknownError):
            call(mode, client, "create", "a tram in the rain", duration=4)
    finally:
        close(mode, client)
    (record,) = ledger.payments()
    assert record.state == PaymentState.UNKNOWN and "409" in (record.reason or "")
    assert len(paid) == 2 and paid[0].headers["payment-signature"] == paid[1].headers["payment-signature"]


def _async_note(sent: list[httpx.Request]) -> Callable[[httpx.Request], Any]:
    async def note(request: httpx.Request) -> None:
        sent.append(request)

    return note
