"""The sandbox speaks the spec: paths, status codes, bodies, and a real x402 paywall."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from typing import Any

import av
import httpx
import pytest
from PIL import Image
from starlette.applications import Starlette

import imagine_agent.sandbox as sandbox_pkg
from imagine_agent.models import PaymentRequired
from imagine_agent.sandbox import Fault, Sandbox, SandboxConfig, media
from imagine_agent.x402 import PrivateKeySigner, decode_payment_header, decode_payment_response
from tests.sandbox.conftest import BASE
from tests.sandbox.support import (
    BODY,
    CREATE,
    FakeClock,
    forged_header,
    header_for,
    pay,
    quote,
    requirement_of,
    spec_402,
)

IMAGINE_PAY_TO = "0x13a9e3ee4A25C3C72D67F42044438aabc54f2b96"
USDC_BASE = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"


def png_bytes(size: tuple[int, int] = (8, 8)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def test_public_api_is_pinned() -> None:
    assert sorted(sandbox_pkg.__all__) == [
        "Fault",
        "FaultKind",
        "Sandbox",
        "SandboxConfig",
        "SandboxServer",
        "Settlement",
        "create_app",
        "load_faults",
        "run",
    ]


# ------------------------------------------------------------------------------------------ the 402


async def test_402_body_is_the_spec_body_except_resource(asgi_client: httpx.AsyncClient) -> None:
    response = await asgi_client.post(CREATE, json=BODY)
    assert response.status_code == 402
    expected = spec_402()
    expected["accepts"][0]["resource"] = f"{BASE}/generation/create"
    # The one change beyond the resource: videoModel lists the models this sandbox sells, with their prices.
    video_model = expected["accepts"][0]["outputSchema"]["input"]["bodyFields"]["templateData"]["properties"][
        "videoModel"
    ]
    assert video_model["enum"] == ["sora"] and video_model["default"] == "sora"
    video_model["enum"] = ["xai-grok-imagine", "sora-2", "sora-2-pro", "fal-kling-o3"]
    video_model["default"] = "xai-grok-imagine"
    video_model["pricing"] = {
        "xai-grok-imagine": {"perSecond": "125000"},
        "sora-2": {"perSecond": "150000"},
        "sora-2-pro": {"perSecond": "750000"},
        "fal-kling-o3": {"perSecond": "325000", "minDuration": 3.0, "maxDuration": 15.0},
    }
    assert response.json() == expected
    assert list(response.json()["accepts"][0]) == list(expected["accepts"][0])  # same key order too


async def test_402_body_shape_without_the_spec_file(asgi_client: httpx.AsyncClient) -> None:
    response = await asgi_client.post(CREATE, json={"prompt": "a cat"})
    assert response.status_code == 402
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"x402Version", "error", "accepts"}
    assert body["x402Version"] == 1
    assert body["error"] == "X-PAYMENT header is required"
    [accept] = body["accepts"]
    assert list(accept) == [
        "scheme",
        "network",
        "maxAmountRequired",
        "resource",
        "description",
        "mimeType",
        "payTo",
        "maxTimeoutSeconds",
        "asset",
        "outputSchema",
        "extra",
    ]
    assert accept["scheme"] == "exact"
    assert accept["network"] == "base"
    assert accept["maxAmountRequired"] == "1000000"
    assert accept["resource"] == f"{BASE}/generation/create"
    assert accept["description"].startswith("Generate AIGC (ai generated content)")
    assert accept["mimeType"] == ""
    assert accept["payTo"] == IMAGINE_PAY_TO
    assert accept["maxTimeoutSeconds"] == 60
    assert accept["asset"] == USDC_BASE
    assert accept["extra"] == {"name": "USD Coin", "version": "2"}
    schema = accept["outputSchema"]
    assert schema["input"]["method"] == "POST"
    assert schema["input"]["bodyFields"]["prompt"]["required"] is True
    assert schema["input"]["bodyFields"]["templateData"]["type"] == "string"
    assert set(schema["input"]["bodyFields"]["templateData"]["properties"]) == {
        "videoModel",
        "soraVideoId",
        "duration",
        "autoClank",
        "autoEnhance",
        "image",
    }
    assert schema["output"]["properties"]["taskId"]["format"] == "uuid"
    assert len(schema["output"]["notes"]) == 5
    assert PaymentRequired.model_validate(body).accepts[0].amount == 1_000_000


async def test_empty_payment_header_counts_as_none(asgi_client: httpx.AsyncClient) -> None:
    response = await asgi_client.post(CREATE, json=BODY, headers={"X-PAYMENT": ""})
    assert response.status_code == 402 and response.json()["error"] == "X-PAYMENT header is required"


@pytest.mark.parametrize(
    ("template", "price"),
    [
        (None, 1_000_000),
        ({}, 1_000_000),
        ({"duration": 8}, 1_000_000),
        ({"duration": 4}, 500_000),
        ({"duration": 1.5}, 187_500),
        ({"duration": 12}, 1_500_000),
        ('{"duration": 4}', 500_000),
        ("{}", 1_000_000),
    ],
)
async def test_price_follows_the_payload(asgi_client: httpx.AsyncClient, template: Any, price: int) -> None:
    body: dict[str, Any] = {"prompt": "a cat"}
    if template is not None:
        body["templateData"] = template
    assert (await quote(asgi_client, body)).amount == price


async def test_price_per_second_is_configurable(make_app: Callable[..., Starlette]) -> None:
    app = make_app(price_per_second=10_000)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=BASE) as client:
        assert (await quote(client, {"prompt": "x", "templateData": {"duration": 3}})).amount == 30_000


async def test_resource_is_this_servers_own_url(app: Starlette) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://other:9999") as client:
        assert (await quote(client)).resource == "http://other:9999/generation/create"


# ------------------------------------------------------------------------------------- request bodies


@pytest.mark.parametrize("as_string", [False, True])
async def test_template_data_as_object_or_string_is_paid_for(
    asgi_client: httpx.AsyncClient,
    payer_key: PrivateKeySigner,
    clock: FakeClock,
    sandbox_state: Sandbox,
    as_string: bool,
) -> None:
    template = {"videoModel": "sora-2", "duration": 4, "autoClank": False}
    body = {"prompt": "a cat on a skateboard", "templateData": json.dumps(template) if as_string else template}
    response, _ = await pay(asgi_client, payer_key, clock, body)
    assert response.status_code == 202
    job = sandbox_state.job(response.json()["taskId"])
    assert job is not None and job.duration == 4 and job.prompt == "a cat on a skateboard"


async def test_object_and_string_template_data_are_the_same_request(
    asgi_client: httpx.AsyncClient, payer_key: PrivateKeySigner, clock: FakeClock, sandbox_state: Sandbox
) -> None:
    template = {"duration": 4, "autoClank": True}
    await pay(asgi_client, payer_key, clock, {"prompt": "p", "templateData": template})
    await pay(asgi_client, payer_key, clock, {"prompt": "p", "templateData": json.dumps(template)})
    first, second = sandbox_state.settlements()
    assert first.request_hash == second.request_hash


@pytest.mark.parametrize(
    ("content", "content_type", "reason"),
    [
        (b"not json", "application/json", "not valid JSON"),
        (b"[1, 2]", "application/json", "JSON object"),
        (b'"prompt"', "application/json", "JSON object"),
        (b"{}", "application/json", "prompt"),
        (b'{"prompt": ""}', "application/json", "prompt is empty"),
        (b'{"prompt": "   "}', "application/json", "prompt is empty"),
        (b'{"prompt": 5}', "application/json", "prompt"),
        (b'{"prompt": "x", "templateData": {"duration": 0}}', "application/json", "duration"),
        (b'{"prompt": "x", "templateData": {"duration": 61}}', "application/json", "duration"),
        (b'{"prompt": "x", "templateData": {"duration": "long"}}', "application/json", "duration"),
        (b'{"prompt": "x", "templateData": {"videoModel": "veo"}}', "application/json", "videoModel"),
        (b'{"prompt": "x", "templateData": "{not json"}', "application/json", "not JSON"),
        (b'{"prompt": "x", "templateData": "[1]"}', "application/json", "JSON object"),
        (b'{"prompt": "x", "templateData": 7}', "application/json", "templateData"),
        (b'{"prompt": "x", "templateData": {"image": "ftp://a/b.png"}}', "application/json", "image"),
        (b'{"prompt": "x", "templateData": {"image": "data:text/plain;base64,aGk="}}', "application/json", "image"),
        (b'{"prompt": "bad \\u0007 bell"}', "application/json", "control characters"),
        (b'{"prompt": "lone \\ud800 surrogate"}', "application/json", "not valid"),
        (b"prompt=x", "application/x-www-form-urlencoded", "unsupported content type"),
    ],
)
async def test_bad_bodies_are_400_with_a_reason(
    asgi_client: httpx.AsyncClient, content: bytes, content_type: str, reason: str
) -> None:
    response = await asgi_client.post(CREATE, content=content, headers={"content-type": content_type})
    assert response.status_code == 400, response.text
    assert reason in response.json()["error"]


async def test_bad_body_with_a_payment_is_400_and_charges_nothing(
    asgi_client: httpx.AsyncClient, payer_key: PrivateKeySigner, clock: FakeClock, sandbox_state: Sandbox
) -> None:
    header = header_for(await quote(asgi_client), payer_key, clock())
    response = await asgi_client.post(CREATE, json={"prompt": ""}, headers={"X-PAYMENT": header})
    assert response.status_code == 400
    assert sandbox_state.settlements() == []


async def test_multipart_with_an_image_upload(
    asgi_client: httpx.AsyncClient, payer_key: PrivateKeySigner, clock: FakeClock, sandbox_state: Sandbox
) -> None:
    data = {"prompt": "animate this", "templateData": json.dumps({"duration": 4}), "seed": "42"}
    files = {"image": ("input.png", png_bytes(), "image/png")}
    requirement = requirement_of(await asgi_client.post(CREATE, data=data, files=files))
    assert requirement.amount == 500_000
    header = header_for(requirement, payer_key, clock())
    response = await asgi_client.post(CREATE, data=data, files=files, headers={"X-PAYMENT": header})
    assert response.status_code == 202, response.text
    assert sandbox_state.settlements()[0].amount == 500_000


async def test_multipart_remix_fields_and_sora_video_id(asgi_client: httpx.AsyncClient) -> None:
    data = {
        "prompt": "continue",
        "soraVideoId": "video_123",
        "remixPostId": "p1",
        "rootRemixPostId": "p0",
        "remixToken": "tok",
    }
    assert (await quote_form(asgi_client, data)).amount == 1_000_000


async def quote_form(client: httpx.AsyncClient, data: dict[str, str]) -> Any:
    return requirement_of(await client.post(CREATE, data=data, files={"image": ("a.gif", b"GIF89a" + bytes(20))}))


@pytest.mark.parametrize(
    ("data", "files", "reason"),
    [
        ({"templateData": "{}"}, {"image": ("a.png", png_bytes(), "image/png")}, "prompt"),
        ({"prompt": "x"}, {"image": ("a.txt", b"hello, not an image", "text/plain")}, "PNG, JPEG, WebP or GIF"),
        ({"prompt": "x"}, {"other": ("a.png", png_bytes(), "image/png")}, "only 'image'"),
        ({"prompt": "x", "templateData": "{oops"}, {"image": ("a.png", png_bytes(), "image/png")}, "not JSON"),
        ({"prompt": "x", "seed": "abc"}, {"image": ("a.png", png_bytes(), "image/png")}, "seed"),
        ({"prompt": "x", "soraVideoId": "bad id!"}, {"image": ("a.png", png_bytes(), "image/png")}, "soraVideoId"),
    ],
)
async def test_bad_multipart_bodies_are_400(
    asgi_client: httpx.AsyncClient, data: dict[str, str], files: dict[str, Any], reason: str
) -> None:
    response = await asgi_client.post(CREATE, data=data, files=files)
    assert response.status_code == 400, response.text
    assert reason in response.json()["error"]


async def test_multipart_image_over_10_mib_is_400(asgi_client: httpx.AsyncClient) -> None:
    big = png_bytes() + bytes(10 * 1024 * 1024)
    response = await asgi_client.post(CREATE, data={"prompt": "x"}, files={"image": ("big.png", big, "image/png")})
    assert response.status_code == 400
    assert "10 MiB" in response.json()["error"]


async def test_multipart_without_boundary_is_400(asgi_client: httpx.AsyncClient) -> None:
    response = await asgi_client.post(CREATE, content=b"garbage", headers={"content-type": "multipart/form-data"})
    assert response.status_code == 400


# ------------------------------------------------------------------------------------------- paying


async def test_valid_payment_is_settled_and_answered_202_with_a_receipt(
    asgi_client: httpx.AsyncClient, payer_key: PrivateKeySigner, clock: FakeClock, sandbox_state: Sandbox
) -> None:
    response, header = await pay(asgi_client, payer_key, clock)
    assert response.status_code == 202
    assert set(response.json()) == {"taskId"}
    task_id = response.json()["taskId"]
    assert uuid.UUID(task_id).version == 4
    receipt = decode_payment_response(response.headers["X-PAYMENT-RESPONSE"])
    [settlement] = sandbox_state.settlements()
    assert receipt.success is True
    assert receipt.network == "base"
    assert receipt.payer == payer_key.address
    assert receipt.transaction == settlement.transaction
    assert receipt.transaction.startswith("0x") and len(receipt.transaction) == 66
    nonce = decode_payment_header(header).payload.authorization.nonce
    assert (settlement.payer, settlement.nonce, settlement.amount, settlement.task_id) == (
        payer_key.address,
        nonce,
        1_000_000,
        task_id,
    )
    assert settlement.at == clock()
    assert sandbox_state.balance(payer_key.address) == SandboxConfig().default_balance - 1_000_000


async def test_transaction_hash_is_deterministic(make_app: Callable[..., Starlette], clock: FakeClock) -> None:
    signer = PrivateKeySigner("0x" + "11" * 32)
    header = ""
    transactions = []
    for _ in range(2):  # the same signed header settled by two fresh sandboxes
        async with httpx.AsyncClient(transport=httpx.ASGITransport(make_app()), base_url=BASE) as client:
            header = header or header_for(await quote(client), signer, clock())
            response = await client.post(CREATE, json=BODY, headers={"X-PAYMENT": header})
            transactions.append(decode_payment_response(response.headers["X-PAYMENT-RESPONSE"]).transaction)
    assert transactions[0] == transactions[1]


RejectCase = Callable[[Any, PrivateKeySigner, float], str]


def _forged(requirement: Any, signer: PrivateKeySigner, now: float) -> str:
    return forged_header(requirement, signer.address, PrivateKeySigner.generate(), now)


def _tampered_value(requirement: Any, signer: PrivateKeySigner, now: float) -> str:
    payment = decode_payment_header(header_for(requirement, signer, now))
    payment.payload.authorization.value = "1"
    from imagine_agent.x402 import encode_payment_header

    return encode_payment_header(payment)


def _with(changed: Callable[[Any, PrivateKeySigner, float], Any]) -> Callable[[Any, PrivateKeySigner, float], str]:
    def make(requirement: Any, signer: PrivateKeySigner, now: float) -> str:
        from imagine_agent.x402 import encode_payment_header

        payment = decode_payment_header(header_for(requirement, signer, now))
        return encode_payment_header(changed(payment, signer, now))

    return make


@pytest.mark.parametrize(
    ("make_header", "reason"),
    [
        pytest.param(_forged, "invalid_exact_evm_payload_signature", id="forged"),
        pytest.param(_tampered_value, "invalid_exact_evm_payload_signature", id="tampered-value"),
        pytest.param(
            lambda r, s, now: header_for(r, s, now, max_amount_required="999999"),
            "invalid_exact_evm_payload_authorization_value",
            id="underpaid",
        ),
        pytest.param(
            lambda r, s, now: header_for(r, s, now, max_amount_required="1000001"),
            "invalid_exact_evm_payload_authorization_value",
            id="overpaid",
        ),
        pytest.param(
            lambda r, s, now: header_for(r, s, now, pay_to="0x" + "ab" * 20),
            "invalid_exact_evm_payload_recipient_mismatch",
            id="wrong-payee",
        ),
        pytest.param(
            lambda r, s, now: header_for(r, s, now - 55),  # validBefore = now + 5 < now + 6
            "invalid_exact_evm_payload_authorization_valid_before",
            id="expires-too-soon",
        ),
        pytest.param(
            lambda r, s, now: header_for(r, s, now - 3600),
            "invalid_exact_evm_payload_authorization_valid_before",
            id="expired",
        ),
        pytest.param(
            lambda r, s, now: header_for(r, s, now + 601),  # validAfter = now + 1
            "invalid_exact_evm_payload_authorization_valid_after",
            id="not-yet-valid",
        ),
        pytest.param(
            lambda r, s, now: header_for(
                r, s, now, network="base-sepolia", asset="0x036CbD53842c5426634e7929541eC2318f3dCF7e"
            ),
            "invalid_network",
            id="wrong-network",
        ),
        pytest.param(
            lambda r, s, now: header_for(r, s, now, extra={"name": "USDC", "version": "2"}),
            "invalid_exact_evm_payload_signature",
            id="wrong-domain",
        ),
        pytest.param(
            _with(lambda p, s, now: p.model_copy(update={"scheme": "upto"})), "invalid_scheme", id="wrong-scheme"
        ),
        pytest.param(
            _with(lambda p, s, now: p.model_copy(update={"x402_version": 2})),
            "invalid_x402_version",
            id="wrong-version",
        ),
        pytest.param(lambda r, s, now: "not base64 at all!", "invalid_payment_header", id="garbage-header"),
        pytest.param(lambda r, s, now: "eyJmb28iOiAxfQ==", "invalid_payment_header", id="not-a-payment"),
    ],
)
async def test_bad_payments_are_402_with_the_reason_and_charge_nothing(
    asgi_client: httpx.AsyncClient,
    payer_key: PrivateKeySigner,
    clock: FakeClock,
    sandbox_state: Sandbox,
    make_header: RejectCase,
    reason: str,
) -> None:
    requirement = await quote(asgi_client)
    response = await asgi_client.post(
        CREATE, json=BODY, headers={"X-PAYMENT": make_header(requirement, payer_key, clock())}
    )
    assert response.status_code == 402, response.text
    body = response.json()
    assert body["error"] == reason
    assert body["accepts"][0]["maxAmountRequired"] == "1000000"
    assert "X-PAYMENT-RESPONSE" not in response.headers
    assert sandbox_state.settlements() == []
    assert sandbox_state.balance(payer_key.address) == SandboxConfig().default_balance
    assert sandbox_state.job_count() == 0


async def test_insufficient_funds(
    make_app: Callable[..., Starlette], payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    app = make_app(balances={payer_key.address: 999_999})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=BASE) as client:
        response, _ = await pay(client, payer_key, clock)
        assert response.status_code == 402
        assert response.json()["error"] == "insufficient_funds"
        app.state.sandbox.fund(payer_key.address, 1)
        response, _ = await pay(client, payer_key, clock)
        assert response.status_code == 202
        assert app.state.sandbox.balance(payer_key.address) == 0


async def test_zero_default_balance_means_unfunded_payers_are_refused(
    make_app: Callable[..., Starlette], payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    app = make_app(default_balance=0)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=BASE) as client:
        response, _ = await pay(client, payer_key, clock)
        assert response.json()["error"] == "insufficient_funds"


async def test_identical_replay_returns_the_original_task(
    asgi_client: httpx.AsyncClient, payer_key: PrivateKeySigner, clock: FakeClock, sandbox_state: Sandbox
) -> None:
    first, header = await pay(asgi_client, payer_key, clock)
    clock.advance(5)
    again = await asgi_client.post(CREATE, json=BODY, headers={"X-PAYMENT": header})
    assert again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["X-PAYMENT-RESPONSE"] == first.headers["X-PAYMENT-RESPONSE"]
    assert len(sandbox_state.settlements()) == 1
    assert sandbox_state.balance(payer_key.address) == SandboxConfig().default_balance - 1_000_000
    assert sandbox_state.job_count() == 1


async def test_replayed_header_for_another_request_is_refused(
    asgi_client: httpx.AsyncClient, payer_key: PrivateKeySigner, clock: FakeClock, sandbox_state: Sandbox
) -> None:
    _, header = await pay(asgi_client, payer_key, clock)
    other = {**BODY, "prompt": "something else entirely"}
    response = await asgi_client.post(CREATE, json=other, headers={"X-PAYMENT": header})
    assert response.status_code == 402
    assert response.json()["error"] == "nonce_already_used"
    assert len(sandbox_state.settlements()) == 1


async def test_replay_is_refused_when_idempotent_replay_is_off(
    make_app: Callable[..., Starlette], payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    app = make_app(idempotent_replay=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=BASE) as client:
        _, header = await pay(client, payer_key, clock)
        again = await client.post(CREATE, json=BODY, headers={"X-PAYMENT": header})
        assert again.status_code == 402
        assert again.json()["error"] == "nonce_already_used"
        assert len(app.state.sandbox.settlements()) == 1


async def test_a_new_signature_for_the_same_request_is_a_second_purchase(
    asgi_client: httpx.AsyncClient, payer_key: PrivateKeySigner, clock: FakeClock, sandbox_state: Sandbox
) -> None:
    first, _ = await pay(asgi_client, payer_key, clock)
    second, _ = await pay(asgi_client, payer_key, clock)
    assert second.status_code == 202
    assert first.json() != second.json()
    assert len(sandbox_state.settlements()) == 2


# ------------------------------------------------------------------------------------------- status


async def test_unknown_task_is_404_not_found(asgi_client: httpx.AsyncClient) -> None:
    for task_id in (str(uuid.uuid4()), "nope", "a%20b"):
        response = await asgi_client.get(f"/generation/{task_id}/status")
        assert response.status_code == 404
        assert response.json() == {"status": "not_found"}


async def test_job_goes_queued_processing_completed_on_the_clock(
    asgi_client: httpx.AsyncClient, payer_key: PrivateKeySigner, clock: FakeClock, sandbox_state: Sandbox
) -> None:
    response, _ = await pay(asgi_client, payer_key, clock, {"prompt": "a red fox", "templateData": {"duration": 4}})
    task_id = response.json()["taskId"]
    job = sandbox_state.job(task_id)
    assert job is not None and 60 <= job.run_seconds <= 180

    first = await asgi_client.get(f"/generation/{task_id}/status")
    assert (first.status_code, first.json()) == (202, {"status": "queued"})

    progress = []
    clock.advance(job.run_seconds * 0.1 + 0.01)
    while clock() < job.created_at + job.run_seconds:
        response = await asgi_client.get(f"/generation/{task_id}/status")
        assert response.status_code == 202
        body = response.json()
        assert set(body) == {"status", "progress"} and body["status"] == "processing"
        assert isinstance(body["progress"], int) and 0 <= body["progress"] <= 100
        progress.append(body["progress"])
        clock.advance(job.run_seconds / 20)
    assert progress == sorted(progress) and progress[0] < 10 and progress[-1] > 80

    done = await asgi_client.get(f"/generation/{task_id}/status")
    assert done.status_code == 200
    assert done.json() == {
        "status": "completed",
        "result": {
            "generation": {
                "text": "A 4-second xai-grok-imagine video of: a red fox",
                "image": f"{BASE}/files/{task_id}.png",
                "video": {"url": f"{BASE}/files/{task_id}.mp4"},
                "templateName": "video",
                "agentId": sandbox_state.agent_id,
            },
            "templateData": {"duration": 4},
        },
    }
    assert uuid.UUID(sandbox_state.agent_id).version == 4


async def test_speed_scales_job_time_and_durations_are_seeded(
    make_app: Callable[..., Starlette], payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    runs = []
    for speed, seed in ((1.0, 7), (60.0, 7), (1.0, 8)):
        app = make_app(speed=speed, seed=seed)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=BASE) as client:
            times = []
            for _ in range(3):
                response, _ = await pay(client, payer_key, clock)
                times.append(app.state.sandbox.job(response.json()["taskId"]).run_seconds)
            runs.append(times)
    assert runs[1] == pytest.approx([t / 60 for t in runs[0]])
    assert runs[0] != runs[2]
    assert len(set(runs[0])) == 3


async def test_many_jobs_cost_nothing_between_reads(
    make_app: Callable[..., Starlette], payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    """Status is computed per read, so an idle sandbox with many jobs does no work at all."""
    from imagine_agent.sandbox.state import Order

    app = make_app()
    sandbox: Sandbox = app.state.sandbox
    for i in range(5000):
        sandbox._new_job(Order(prompt=f"p{i}", duration=8, request_hash=str(i)))
    assert sandbox.job_count() == 5000
    clock.advance(10_000)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=BASE) as client:
        any_id = next(iter(sandbox._jobs))
        assert (await client.get(f"/generation/{any_id}/status")).json()["status"] == "completed"


# -------------------------------------------------------------------------------------------- files


async def _completed_task(
    client: httpx.AsyncClient, signer: PrivateKeySigner, clock: FakeClock, body: dict[str, Any] | None = None
) -> str:
    response, _ = await pay(client, signer, clock, body)
    clock.advance(1000)
    task_id: str = response.json()["taskId"]
    return task_id


@pytest.mark.parametrize(("duration", "frames"), [(8, 48), (1, 6)])  # the MP4 lasts what was paid for, at 6 fps
async def test_video_is_a_real_h264_mp4(
    asgi_client: httpx.AsyncClient, payer_key: PrivateKeySigner, clock: FakeClock, duration: int, frames: int
) -> None:
    task_id = await _completed_task(
        asgi_client, payer_key, clock, {"prompt": "waves", "templateData": {"duration": duration}}
    )
    status = (await asgi_client.get(f"/generation/{task_id}/status")).json()
    response = await asgi_client.get(status["result"]["generation"]["video"]["url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert int(response.headers["content-length"]) == len(response.content)
    with av.open(io.BytesIO(response.content), mode="r") as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.width, stream.height) == (320, 180)
        decoded = list(container.decode(video=0))
        seconds = container.duration / 1_000_000  # microseconds
    assert len(decoded) == frames
    assert abs(seconds - duration) < 0.5, seconds
    first, last = (frame.to_image() for frame in (decoded[0], decoded[-1]))  # type: ignore[no-untyped-call]
    assert first.tobytes() != last.tobytes()  # something moves
    again = await asgi_client.get(f"/files/{task_id}.mp4")
    assert again.content == response.content  # rendered once, cached


async def test_the_same_prompt_and_duration_is_encoded_once_per_process(
    asgi_client: httpx.AsyncClient, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    """A second task with the same prompt and duration gets the same bytes without encoding again; another
    prompt is encoded anew (the cache is keyed by what the video shows, not shared blindly)."""
    prompt = f"a lighthouse at dusk {uuid.uuid4()}"

    async def video(text: str) -> bytes:
        task_id = await _completed_task(asgi_client, payer_key, clock, {"prompt": text})
        return (await asgi_client.get(f"/files/{task_id}.mp4")).content

    first = await video(prompt)
    encoded = media.render_mp4.cache_info().misses
    assert await video(prompt) == first
    assert media.render_mp4.cache_info().misses == encoded
    other = await video(f"{prompt}, in the rain")
    assert media.render_mp4.cache_info().misses == encoded + 1 and other != first


async def test_preview_is_a_png_of_the_first_frame(
    asgi_client: httpx.AsyncClient, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    task_id = await _completed_task(asgi_client, payer_key, clock)
    status = (await asgi_client.get(f"/generation/{task_id}/status")).json()
    response = await asgi_client.get(status["result"]["generation"]["image"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert int(response.headers["content-length"]) == len(response.content)
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.format == "PNG" and image.size == (320, 180)


async def test_files_of_unfinished_or_unknown_tasks_are_404(
    asgi_client: httpx.AsyncClient, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    response, _ = await pay(asgi_client, payer_key, clock)
    task_id = response.json()["taskId"]
    for path in (f"/files/{task_id}.mp4", f"/files/{task_id}.png", f"/files/{uuid.uuid4()}.mp4", "/files/x.exe"):
        assert (await asgi_client.get(path)).status_code == 404


# -------------------------------------------------------------------------------------- facilitator


def _facilitator_body(requirement: Any, header: str, *, as_object: bool = True) -> dict[str, Any]:
    payload: Any = decode_payment_header(header).to_wire() if as_object else header
    return {"x402Version": 1, "paymentPayload": payload, "paymentRequirements": requirement.to_wire()}


async def test_supported(asgi_client: httpx.AsyncClient) -> None:
    response = await asgi_client.get("/supported")
    assert response.json() == {
        "kinds": [
            {"x402Version": 1, "scheme": "exact", "network": "base"},
            {"x402Version": 2, "scheme": "exact", "network": "eip155:8453"},
        ],
        "extensions": [],
        "signers": {},
    }


@pytest.mark.parametrize("as_object", [True, False])
async def test_facilitator_verify_and_settle(
    asgi_client: httpx.AsyncClient,
    payer_key: PrivateKeySigner,
    clock: FakeClock,
    sandbox_state: Sandbox,
    as_object: bool,
) -> None:
    requirement = await quote(asgi_client)
    body = _facilitator_body(requirement, header_for(requirement, payer_key, clock()), as_object=as_object)

    verified = await asgi_client.post("/verify", json=body)
    assert verified.json() == {"isValid": True, "invalidReason": None, "payer": payer_key.address}
    assert sandbox_state.settlements() == []

    settled = await asgi_client.post("/settle", json=body)
    [settlement] = sandbox_state.settlements()
    assert settled.json() == {
        "success": True,
        "errorReason": None,
        "transaction": settlement.transaction,
        "network": "base",
        "payer": payer_key.address,
    }
    assert settlement.task_id is None

    again = await asgi_client.post("/settle", json=body)
    assert again.json()["success"] is False and again.json()["errorReason"] == "nonce_already_used"
    verified = await asgi_client.post("/verify", json=body)
    assert verified.json()["isValid"] is False and verified.json()["invalidReason"] == "nonce_already_used"

    # the create endpoint shares the nonce book: a header settled by the facilitator cannot buy a video
    header = header_for(requirement, payer_key, clock())
    await asgi_client.post("/settle", json=_facilitator_body(requirement, header))
    response = await asgi_client.post(CREATE, json=BODY, headers={"X-PAYMENT": header})
    assert response.status_code == 402 and response.json()["error"] == "nonce_already_used"


async def test_facilitator_rejects_bad_inputs(
    asgi_client: httpx.AsyncClient, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    requirement = await quote(asgi_client)
    good = _facilitator_body(requirement, header_for(requirement, payer_key, clock()))
    cases = [
        ({**good, "x402Version": 2}, "invalid_x402_version"),
        ({**good, "paymentRequirements": {"scheme": "exact"}}, "invalid_payment_requirements"),
        ({**good, "paymentPayload": {"x402Version": 1}}, "invalid_payload"),
        ({**good, "paymentPayload": "!!"}, "invalid_payload"),
        (
            {**good, "paymentRequirements": {**good["paymentRequirements"], "maxAmountRequired": "5"}},
            "invalid_exact_evm_payload_authorization_value",
        ),
        (
            {**good, "paymentRequirements": {**good["paymentRequirements"], "asset": "0x" + "12" * 20}},
            "invalid_payment_requirements",
        ),
    ]
    for body, reason in cases:
        verified = (await asgi_client.post("/verify", json=body)).json()
        assert verified["isValid"] is False and verified["invalidReason"] == reason, body
        settled = (await asgi_client.post("/settle", json=body)).json()
        assert settled["success"] is False and settled["errorReason"] == reason
        assert settled["transaction"] == ""
    assert (await asgi_client.post("/verify", content=b"nope")).status_code == 400
    assert (await asgi_client.post("/settle", json=[1])).status_code == 400


# -------------------------------------------------------------------------------------------- admin


async def test_admin_settlements_fund_balance_reset(
    asgi_client: httpx.AsyncClient, payer_key: PrivateKeySigner, clock: FakeClock, sandbox_state: Sandbox
) -> None:
    response, header = await pay(asgi_client, payer_key, clock)
    [row] = (await asgi_client.get("/_admin/settlements")).json()
    assert row == {
        "payer": payer_key.address,
        "nonce": decode_payment_header(header).payload.authorization.nonce,
        "amount": "1000000",
        "taskId": response.json()["taskId"],
        "transaction": sandbox_state.settlements()[0].transaction,
        "requestHash": sandbox_state.settlements()[0].request_hash,
        "at": clock(),
    }
    balance = SandboxConfig().default_balance - 1_000_000
    got = (await asgi_client.get(f"/_admin/balances/{payer_key.address}")).json()
    assert got == {"address": payer_key.address, "balance": str(balance)}
    funded = await asgi_client.post("/_admin/fund", json={"address": payer_key.address, "amount": "5"})
    assert funded.json()["balance"] == str(balance + 5)
    assert (await asgi_client.post("/_admin/fund", json={"address": "0x12", "amount": 5})).status_code == 400
    assert (
        await asgi_client.post("/_admin/fund", json={"address": payer_key.address, "amount": 1.5})
    ).status_code == 400
    assert (
        await asgi_client.post("/_admin/fund", json={"address": payer_key.address, "amount": -(10**12)})
    ).status_code == 400
    assert (await asgi_client.get("/_admin/balances/nope")).status_code == 400

    assert (await asgi_client.post("/_admin/faults", json={"faults": [{"kind": "fail"}]})).json() == {"armed": 1}
    assert (await asgi_client.get("/_admin/faults")).json()["faults"][0]["kind"] == "fail"
    assert (await asgi_client.post("/_admin/reset")).status_code == 200
    assert (await asgi_client.get("/_admin/settlements")).json() == []
    assert sandbox_state.balance(payer_key.address) == SandboxConfig().default_balance
    assert sandbox_state.armed_faults() == []
    assert (await asgi_client.get(f"/generation/{response.json()['taskId']}/status")).status_code == 404


def test_reset_rearms_config_faults_and_balances(clock: FakeClock) -> None:
    config = SandboxConfig(clock=clock, faults=[Fault(kind="fail", times=2)], balances={"0x" + "AB" * 20: 7})
    state = Sandbox(config)
    state.take({"fail"}, "create")
    state.fund("0x" + "ab" * 20, 3)
    state.reset()
    assert state.armed_faults() == [(Fault(kind="fail", times=2), 2)]
    assert state.balance("0x" + "Ab" * 20) == 7


# ------------------------------------------------------------------------------------------- config


def test_config_other_network_gets_its_usdc() -> None:
    config = SandboxConfig(network="base-sepolia")
    assert config.asset == "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
    assert config.extra == {"name": "USDC", "version": "2"}
    assert SandboxConfig(network="base-sepolia", asset=USDC_BASE).asset == USDC_BASE


@pytest.mark.parametrize(
    "bad",
    [
        {"network": "ethereum"},
        {"speed": 0},
        {"job_seconds": (5, 1)},
        {"balances": {"0xab": -1}},
        {"price_per_second": -1},
        {"unknown": 1},
    ],
)
def test_config_rejects_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SandboxConfig(**bad)


async def test_base_sepolia_sandbox_accepts_sepolia_payments(
    make_app: Callable[..., Starlette], payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    app = make_app(network="base-sepolia")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=BASE) as client:
        response, _ = await pay(client, payer_key, clock)
        assert response.status_code == 202
        assert decode_payment_response(response.headers["X-PAYMENT-RESPONSE"]).network == "base-sepolia"
        assert (await client.get("/supported")).json()["kinds"][0]["network"] == "base-sepolia"
