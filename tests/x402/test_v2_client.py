"""Issue 13: x402 v2 negotiated per answer, payment-identifier, any video model, today's results.

Every test runs the sync client over loopback and the async client in-process (ASGI) against the real
sandbox speaking v1, v2 or both; no sandbox model here is called ``sora``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from imagine_agent.client import AsyncImagineClient, ImagineClient, request_hash
from imagine_agent.errors import (
    InvalidRequestError,
    PaymentRejectedError,
    PaymentStateUnknownError,
    PolicyViolationError,
)
from imagine_agent.ledger import PaymentState
from imagine_agent.models import CreateRequest
from imagine_agent.sandbox import SandboxConfig, SandboxServer, create_app
from imagine_agent.sandbox.config import ModelPrice
from imagine_agent.service import _requirement
from imagine_agent.wallet import Wallet
from imagine_agent.x402 import parse_402, payment_id_for, sign_payment

from ..conftest import FAST_POLL, SPEED

pytestmark = pytest.mark.e2e

NO_SORA = {
    "xai-grok-imagine": ModelPrice(),
    "fal-kling-o3": ModelPrice(per_second=325_000, min_duration=3, max_duration=15),
}


def _get(url: str) -> Any:
    """A one-step flow: GET ``url`` through the client's own driver (sync or async)."""
    response = yield httpx.Request("GET", url)
    return response


def _json_of(header: str) -> Any:
    return json.loads(base64.b64decode(header))


@dataclass
class Run:
    """One client (sync or async) on one sandbox, with every request it sent."""

    mode: str
    client: Any
    state: Any
    sent: list[httpx.Request]

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, name)(*args, **kwargs)
        if self.mode == "async":
            result = await result
        return result

    async def wait(self, job: Any) -> Any:
        return (await job.wait()) if self.mode == "async" else job.wait()

    def payments_sent(self) -> list[httpx.Request]:
        return [r for r in self.sent if "payment-signature" in r.headers or "x-payment" in r.headers]


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def run_on(mode: str, make_wallet: Callable[..., Wallet]) -> Callable[..., Any]:
    """``async with run_on(**config) as run``: a client of ``mode`` on a sandbox with that config."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def start(wallet: Wallet | None = None, **config: Any) -> AsyncIterator[Run]:
        config = {"speed": SPEED, **config}
        sent: list[httpx.Request] = []
        wallet = wallet or make_wallet()
        if mode == "sync":
            with (
                SandboxServer(SandboxConfig(**config)) as server,
                ImagineClient(server.url, wallet=wallet, poll=FAST_POLL) as client,
            ):
                client.http.event_hooks["request"].append(sent.append)
                yield Run(mode, client, server.state, sent)
        else:
            app = create_app(SandboxConfig(**config))

            async def note(request: httpx.Request) -> None:
                sent.append(request)

            async with AsyncImagineClient(
                "http://sandbox.test", wallet=wallet, poll=FAST_POLL, transport=httpx.ASGITransport(app=app)
            ) as client:
                client.http.event_hooks["request"].append(note)
                yield Run(mode, client, app.state.sandbox, sent)

    return start


async def test_v2_generate_with_a_non_sora_model_carries_media_page_and_coin(run_on, counting_signer, ledger) -> None:
    """Done-when: a 402 listing only non-Sora models; the chosen model is in the create body; the result
    carries the media page and the coin's address when autoClank was on."""
    async with run_on(x402="v2", models=NO_SORA, rich_results=True) as run:
        quote = await run.call("quote", "a kite over dunes")
        assert quote.models == ["xai-grok-imagine", "fal-kling-o3"] and quote.default_model == "xai-grok-imagine"
        assert quote.requirement.x402_version == 2 and quote.requirement.network == "base"
        job = await run.call("create", "a kite over dunes", video_model="fal-kling-o3", auto_clank=True)
        status = await run.wait(job)
        page = await run.call("_run", _get(status.media_url))  # the media page is served
    paid = run.payments_sent()
    assert len(paid) == 1 and "x-payment" not in paid[0].headers  # v2 answer: v2 header only
    body = json.loads(paid[0].content)
    assert json.loads(body["templateData"])["videoModel"] == "fal-kling-o3"
    assert job.payment.amount == 2_600_000 == run.state.settlements()[0].amount  # kling's price for 8 s
    assert status.media_url == f"{run.client.base_url}/media/{job.task_id}"
    assert page.status_code == 200 and "fal-kling-o3" in page.text and f"{job.task_id}.mp4" in page.text
    assert status.coin is not None and status.coin.address and status.coin.address.startswith("0x")
    assert status.transaction == run.state.settlements()[0].transaction
    (record,) = ledger.payments()
    assert record.state == PaymentState.PAID and record.network == "base" and record.amount == 2_600_000
    assert counting_signer.signed == 1


async def test_v2_payment_echoes_accepted_resource_and_extensions_exactly(run_on) -> None:
    async with run_on(x402="v2", models=NO_SORA) as run:
        await run.call("create", "a lantern festival", duration=4)
    first = run.sent[0]
    unpaid = next(r for r in run.sent if "payment-signature" not in r.headers)
    assert unpaid is first
    (paid,) = run.payments_sent()
    payment = _json_of(paid.headers["payment-signature"])
    assert set(payment) == {"x402Version", "payload", "accepted", "resource", "extensions"}
    assert payment["x402Version"] == 2
    assert payment["accepted"]["network"] == "eip155:8453" and payment["accepted"]["amount"] == "500000"
    assert payment["payload"]["authorization"]["value"] == payment["accepted"]["amount"]  # signed = checked
    expected_id = payment_id_for(payment["payload"]["authorization"]["nonce"])  # one id per signature
    assert payment["extensions"]["payment-identifier"]["info"] == {"required": False, "id": expected_id}
    assert expected_id.startswith("pay_") and len(expected_id) == 36
    assert payment["resource"]["url"].endswith("/generation/create")


async def test_v2_resend_reuses_the_header_and_its_payment_identifier(run_on, counting_signer) -> None:
    """A lost answer after settlement: the same PAYMENT-SIGNATURE (so the same id) goes again; one signature."""
    async with run_on(x402="v2", models=NO_SORA, faults=[{"kind": "error_after_settle"}]) as run:
        job = await run.call("create", "a paper boat")
    headers = [r.headers["payment-signature"] for r in run.payments_sent()]
    assert len(headers) == 2 and headers[0] == headers[1]
    ids = {_json_of(h)["extensions"]["payment-identifier"]["info"]["id"] for h in headers}
    assert len(ids) == 1 and counting_signer.signed == 1
    assert [s.task_id for s in run.state.settlements()] == [job.task_id]


async def test_a_model_the_server_does_not_list_is_refused_before_paying(run_on, counting_signer, ledger) -> None:
    async with run_on(x402="v2", models=NO_SORA) as run:
        with pytest.raises(InvalidRequestError, match="'sora'"):  # this server answers 400, as a careful one does
            await run.call("create", "a robot", video_model="sora")
        await run.call("quote", "a robot")  # learns the models from the 402
        assert run.payments_sent() == [] and counting_signer.signed == 0 and ledger.payments() == []
        sent_before = len(run.sent)
        with pytest.raises(InvalidRequestError, match="does not sell"):  # now known: refused without a request
            await run.call("create", "a robot", video_model="sora-2-pro")
        assert len(run.sent) == sent_before


@pytest.mark.parametrize("x402", ["v1", "both"])
async def test_v1_and_hybrid_servers_get_x_payment(run_on, x402: str) -> None:
    async with run_on(x402=x402, models=NO_SORA) as run:
        job = await run.call("create", "a comet")
    (paid,) = run.payments_sent()
    expect_v2 = x402 == "both"  # a PAYMENT-REQUIRED header means v2, as the reference clients decide
    assert ("payment-signature" in paid.headers) is expect_v2 and ("x-payment" in paid.headers) is not expect_v2
    assert job.payment is not None and job.payment.transaction == run.state.settlements()[0].transaction


async def test_settlement_pending_is_journaled_pending_with_its_transaction(run_on, counting_signer, ledger) -> None:
    async with run_on(x402="v2", faults=[{"kind": "settlement_pending"}]) as run:
        with pytest.raises(PaymentStateUnknownError, match="journaled as pending"):
            await run.call("create", "a glacier")
    (record,) = ledger.payments()
    assert record.state == PaymentState.PENDING
    assert record.transaction == run.state.settlements()[0].transaction
    assert counting_signer.signed == 1 and len(run.payments_sent()) == 1  # pending is never re-sent or re-signed


async def test_a_400_to_a_payment_is_a_malformed_payment_rejection(run_on, counting_signer, ledger) -> None:
    async with run_on(x402="v2") as run:

        def mangle(request: httpx.Request) -> None:  # a proxy that damages the header on its way
            if "payment-signature" in request.headers:
                request.headers["payment-signature"] = "not%base64"

        async def amangle(request: httpx.Request) -> None:
            mangle(request)

        run.client.http.event_hooks["request"].insert(0, mangle if run.mode == "sync" else amangle)
        with pytest.raises(PaymentRejectedError, match="HTTP 400, malformed payment"):
            await run.call("create", "a meadow")
        assert run.state.settlements() == []
    (record,) = ledger.payments()
    assert record.state == PaymentState.REJECTED and counting_signer.signed == 1
    assert len(run.payments_sent()) == 1  # a 400 is final: nothing settled, nothing to re-send


async def test_a_402_that_does_not_list_the_model_is_not_paid(mode, make_wallet, counting_signer, ledger) -> None:
    """A server that prices any body: the model is checked against the 402's enum before signing."""
    from ..spec import SPEC_402  # the seed spec's 402: its enum lists only "sora"

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(402, content=SPEC_402, headers={"content-type": "application/json"}, request=request)

    transport = httpx.MockTransport(answer)
    with pytest.raises(InvalidRequestError, match=r"does not sell video model 'sora-2'.*lists sora"):
        if mode == "sync":
            with ImagineClient("https://eliza.getimagine.club", wallet=make_wallet(), transport=transport) as c:
                c.create("a tram", video_model="sora-2")
        else:
            async with AsyncImagineClient(
                "https://eliza.getimagine.club", wallet=make_wallet(), transport=transport
            ) as c:
                await c.create("a tram", video_model="sora-2")
    assert counting_signer.signed == 0 and ledger.payments() == []


async def test_credits_paid_create_is_zero_usdc_and_touches_no_cap(run_on, ledger, make_wallet) -> None:
    async with run_on(x402="v2") as run:
        budget_before = run.client.wallet.budget()

        def free(request: httpx.Request) -> httpx.Response:  # a provider that bills its credits: 202 at once
            return httpx.Response(202, json={"taskId": "123e4567-e89b-12d3-a456-426614174000"}, request=request)

        transport = httpx.MockTransport(free)
        if run.mode == "sync":
            with ImagineClient("http://credits.test", wallet=run.client.wallet, transport=transport) as c:
                job = c.create("a whale")
        else:
            async with AsyncImagineClient("http://credits.test", wallet=run.client.wallet, transport=transport) as c:
                job = await c.create("a whale")
    assert job.payment is not None and job.payment.paid_by == "credits" and job.payment.amount == 0
    assert job.payment.to_json()["paidBy"] == "credits"
    assert ledger.payments() == []
    assert run.client.wallet.budget() == budget_before


async def test_a_hybrid_402_naming_two_prices_is_refused_before_signing(
    mode, make_wallet, counting_signer, ledger
) -> None:
    from imagine_agent.x402.v1 import b64json

    required = {
        "x402Version": 2,
        "resource": {"url": "http://hybrid.test/generation/create"},
        "accepts": [
            {
                "scheme": "exact",
                "network": "eip155:8453",
                "amount": "1000000",
                "maxAmountRequired": "10",
                "asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
                "payTo": "0x13a9e3ee4A25C3C72D67F42044438aabc54f2b96",
                "maxTimeoutSeconds": 60,
                "extra": {"name": "USD Coin", "version": "2"},
            }
        ],
    }

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(402, json={}, headers={"PAYMENT-REQUIRED": b64json(required)}, request=request)

    transport = httpx.MockTransport(answer)
    with pytest.raises(PolicyViolationError, match="two prices"):
        if mode == "sync":
            with ImagineClient("http://hybrid.test", wallet=make_wallet(), transport=transport) as c:
                c.create("a bridge")
        else:
            async with AsyncImagineClient("http://hybrid.test", wallet=make_wallet(), transport=transport) as c:
                await c.create("a bridge")
    assert counting_signer.signed == 0 and ledger.payments() == []


def test_the_models_are_cached_per_endpoint_for_a_short_time(make_wallet) -> None:
    now = [1_800_000_000.0]
    with (
        SandboxServer(SandboxConfig(speed=SPEED, models=NO_SORA)) as server,
        ImagineClient(server.url, wallet=make_wallet(), poll=FAST_POLL, clock=lambda: now[0]) as client,
    ):
        sent: list[httpx.Request] = []
        client.http.event_hooks["request"].append(sent.append)
        assert client.models() == (["xai-grok-imagine", "fal-kling-o3"], "xai-grok-imagine")
        assert client.models()[0] == ["xai-grok-imagine", "fal-kling-o3"] and len(sent) == 1  # cached
        server.state.config.models = {"sora-2": ModelPrice()}  # the server changes what it sells
        server.state.config.default_model = "sora-2"
        now[0] += 301  # past MODELS_TTL: asked again
        assert client.models() == (["sora-2"], "sora-2") and len(sent) == 2


def test_a_journaled_v2_header_is_re_sent_as_is_after_a_crash(make_wallet, counting_signer, ledger) -> None:
    """Crash recovery: the journaled PAYMENT-SIGNATURE (with its payment-identifier) goes out again,
    in the v2 header, without a new signature."""
    wallet = make_wallet()
    with (
        SandboxServer(SandboxConfig(speed=SPEED, x402="v2")) as server,
        ImagineClient(server.url, wallet=wallet, poll=FAST_POLL) as client,
    ):
        request = CreateRequest.build("a crane at dawn", duration=4)
        rhash = request_hash(client.base_url, request, None)
        answer = httpx.post(client.create_url, json=request.body())
        required = parse_402(answer.headers, answer.content)
        wallet.authorize(required, resource_url=client.create_url, request_hash=rhash)  # journaled, never sent
        (record,) = ledger.payments()
        sent: list[httpx.Request] = []
        client.http.event_hooks["request"].append(sent.append)
        job = client.resend(request, wallet.resume(record, _requirement(record)))
    assert [r.headers.get("payment-signature") for r in sent] == [record.header]
    assert counting_signer.signed == 1 and [s.task_id for s in server.state.settlements()] == [job.task_id]
    assert ledger.get(record.id).state == PaymentState.PAID


async def test_a_second_payment_under_one_payment_identifier_is_409_and_new_gets_its_own(
    run_on, counting_signer
) -> None:
    """The sandbox keeps ids as the extension says (same id, different payment: 409, nothing settled);
    ``new=True`` (``--new``: a new video on purpose) signs again, with a fresh id, and is paid."""
    async with run_on(x402="v2") as run:
        first = await run.call("create", "a windmill")
        request = CreateRequest.build("a windmill")
        answer = await run.call("_run", _post(run.client.create_url, request))
        required = parse_402(answer.headers, answer.content)
        other = sign_payment(required.accepts[0], counting_signer, now=int(run.state.now())).to_wire()
        first_id = _json_of(run.payments_sent()[0].headers["payment-signature"])["extensions"]
        other["extensions"] = first_id  # a different signature under the first one's id
        clash_header = base64.b64encode(json.dumps(other).encode()).decode()
        clash = await run.call("_run", _post(run.client.create_url, request, clash_header))
        assert clash.status_code == 409 and len(run.state.settlements()) == 1
        again = await run.call("create", "a windmill", new=True)
    ids = [
        _json_of(r.headers["payment-signature"])["extensions"]["payment-identifier"]["info"]["id"]
        for r in run.payments_sent()
    ]
    assert ids[0] == ids[1] != ids[2]  # the clash reused the first id on purpose; new=True got its own
    assert [s.task_id for s in run.state.settlements()] == [first.task_id, again.task_id]


def _post(url: str, request: CreateRequest, payment: str | None = None) -> Any:
    headers = {"content-type": "application/json"} | ({"payment-signature": payment} if payment else {})
    response = yield httpx.Request("POST", url, headers=headers, content=json.dumps(request.body()).encode())
    return response


@pytest.mark.parametrize(
    "reason", ["unexpected_settle_error", "transaction_failed", "invalid_exact_evm_payload_signature"]
)  # a verify reason in a failed settle
async def test_a_v2_settlement_failure_receipt_is_unknown_never_a_rejection(
    mode, make_wallet, counting_signer, ledger, reason: str
) -> None:
    """An official v2 server answers a failed settle with 402, body {} and only a PAYMENT-RESPONSE:
    the payment may have landed, so it counts as spent (unknown), never released as rejected."""
    from imagine_agent.x402.v1 import b64json

    required = {
        "x402Version": 2,
        "resource": {"url": "http://v2.test/generation/create"},
        "accepts": [
            {
                "scheme": "exact",
                "network": "eip155:8453",
                "amount": "500000",
                "asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
                "payTo": "0x13a9e3ee4A25C3C72D67F42044438aabc54f2b96",
                "maxTimeoutSeconds": 60,
                "extra": {"name": "USD Coin", "version": "2"},
            }
        ],
    }
    failed = {"success": False, "errorReason": reason, "transaction": "", "network": "eip155:8453"}

    def answer(request: httpx.Request) -> httpx.Response:
        if "payment-signature" not in request.headers:
            return httpx.Response(402, json={}, headers={"PAYMENT-REQUIRED": b64json(required)}, request=request)
        return httpx.Response(402, json={}, headers={"PAYMENT-RESPONSE": b64json(failed)}, request=request)

    transport = httpx.MockTransport(answer)
    with pytest.raises(PaymentStateUnknownError, match=f"settlement failed: {reason}"):
        if mode == "sync":
            with ImagineClient("http://v2.test", wallet=make_wallet(), transport=transport) as c:
                c.create("a lighthouse")
        else:
            async with AsyncImagineClient("http://v2.test", wallet=make_wallet(), transport=transport) as c:
                await c.create("a lighthouse")
    (record,) = ledger.payments()
    assert record.state == PaymentState.UNKNOWN and counting_signer.signed == 1


async def test_a_v2_rejection_reason_in_the_new_payment_required_header_is_a_rejection(
    mode, make_wallet, counting_signer, ledger
) -> None:
    """A v2 server states a verify failure in the PAYMENT-REQUIRED header of its 402 (body {}): the classifier
    reads that reason, so a credible pre-settlement failure is rejected, not left unknown."""
    from imagine_agent.x402.v1 import b64json

    required = {
        "x402Version": 2,
        "resource": {"url": "http://v2.test/generation/create"},
        "accepts": [
            {
                "scheme": "exact",
                "network": "eip155:8453",
                "amount": "500000",
                "asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
                "payTo": "0x13a9e3ee4A25C3C72D67F42044438aabc54f2b96",
                "maxTimeoutSeconds": 60,
                "extra": {"name": "USD Coin", "version": "2"},
            }
        ],
    }
    refused = {**required, "error": "invalid_exact_evm_payload_signature"}

    def answer(request: httpx.Request) -> httpx.Response:
        body = refused if "payment-signature" in request.headers else required
        return httpx.Response(402, json={}, headers={"PAYMENT-REQUIRED": b64json(body)}, request=request)

    transport = httpx.MockTransport(answer)
    with pytest.raises(PaymentRejectedError, match="invalid_exact_evm_payload_signature"):
        if mode == "sync":
            with ImagineClient("http://v2.test", wallet=make_wallet(), transport=transport) as c:
                c.create("a lighthouse")
        else:
            async with AsyncImagineClient("http://v2.test", wallet=make_wallet(), transport=transport) as c:
                await c.create("a lighthouse")
    (record,) = ledger.payments()
    assert record.state == PaymentState.REJECTED and counting_signer.signed == 1
