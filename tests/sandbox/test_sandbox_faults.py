"""Every scripted fault is observable, charges money exactly when it says it does, and then goes away."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from imagine_agent.sandbox import Fault, Sandbox, SandboxConfig, load_faults
from imagine_agent.sandbox.config import FAULT_KINDS
from imagine_agent.x402 import PrivateKeySigner, decode_payment_response
from tests.sandbox.conftest import BASE
from tests.sandbox.support import BODY, CREATE, FakeClock, header_for, pay, quote

FULL = SandboxConfig().default_balance


async def paid_header(client: httpx.AsyncClient, signer: PrivateKeySigner, clock: FakeClock) -> str:
    return header_for(await quote(client), signer, clock())


async def send(client: httpx.AsyncClient, header: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return await client.post(CREATE, json=BODY if body is None else body, headers={"X-PAYMENT": header})


async def new_task(client: httpx.AsyncClient, signer: PrivateKeySigner, clock: FakeClock) -> str:
    response, _ = await pay(client, signer, clock)
    assert response.status_code == 202, response.text
    task_id: str = response.json()["taskId"]
    return task_id


def status_of(client: httpx.AsyncClient, task_id: str) -> Any:
    return client.get(f"/generation/{task_id}/status")


def test_every_fault_kind_is_covered_here() -> None:
    source = Path(__file__).read_text()
    missing = [kind for kind in FAULT_KINDS if f"def test_{kind}" not in source]
    assert missing == []


# ------------------------------------------------------------------------------------- around payment


async def test_error_before_settle(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    sandbox_state.add_faults(Fault(kind="error_before_settle"))
    header = await paid_header(asgi_client, payer_key, clock)
    response = await send(asgi_client, header)
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>500 Internal Server Error</h1>" in response.text
    assert sandbox_state.settlements() == [] and sandbox_state.balance(payer_key.address) == FULL
    retry = await send(asgi_client, header)  # the same header, still valid: settles now, once
    assert retry.status_code == 202
    assert len(sandbox_state.settlements()) == 1


async def test_error_after_settle(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    sandbox_state.add_faults({"kind": "error_after_settle"})
    header = await paid_header(asgi_client, payer_key, clock)
    response = await send(asgi_client, header)
    assert response.status_code == 500 and "X-PAYMENT-RESPONSE" not in response.headers
    [settlement] = sandbox_state.settlements()  # the money is gone and a task exists…
    assert sandbox_state.balance(payer_key.address) == FULL - 1_000_000
    assert sandbox_state.job(settlement.task_id or "") is not None
    retry = await send(asgi_client, header)  # …and replaying the same header recovers it
    assert retry.status_code == 202 and retry.json() == {"taskId": settlement.task_id}
    assert len(sandbox_state.settlements()) == 1


@pytest.mark.parametrize("settle", [True, False])
async def test_drop_after_payment(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock, settle: bool
) -> None:
    sandbox_state.add_faults(Fault(kind="drop_after_payment", params={"settle": settle}))
    header = await paid_header(asgi_client, payer_key, clock)
    with pytest.raises(httpx.RemoteProtocolError):
        await send(asgi_client, header)
    assert len(sandbox_state.settlements()) == (1 if settle else 0)
    retry = await send(asgi_client, header)
    assert retry.status_code == 202
    [settlement] = sandbox_state.settlements()
    assert retry.json() == {"taskId": settlement.task_id}


async def test_drop_after_payment_is_a_transport_error(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    sandbox_state.add_faults(Fault(kind="drop_after_payment"))
    with pytest.raises(httpx.TransportError):
        await send(asgi_client, await paid_header(asgi_client, payer_key, clock))


@pytest.mark.parametrize("status", [204, 303, 307, 409, 422, 429])
@pytest.mark.parametrize("settle", [True, False])
async def test_status_after_payment(
    asgi_client: httpx.AsyncClient,
    sandbox_state: Sandbox,
    payer_key: PrivateKeySigner,
    clock: FakeClock,
    status: int,
    settle: bool,
) -> None:
    sandbox_state.add_faults(Fault(kind="status_after_payment", params={"status": status, "settle": settle}))
    header = await paid_header(asgi_client, payer_key, clock)
    response = await send(asgi_client, header)
    assert response.status_code == status
    assert len(sandbox_state.settlements()) == (1 if settle else 0)
    if 300 <= status < 400:  # another origin: a client that followed it would hand the header to a stranger
        assert response.headers["location"].startswith("http://127.0.0.2")
    if status == 204:
        assert response.content == b""
    retry = await send(asgi_client, header)  # the same header, once more: settles (once) and answers normally
    assert retry.status_code == 202 and len(sandbox_state.settlements()) == 1


def test_status_after_payment_rejects_nonsense() -> None:
    for status in (200, 402, 500, 99):
        with pytest.raises(ValueError, match="status"):
            Fault(kind="status_after_payment", params={"status": status})


async def test_oversized_answer(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    sandbox_state.add_faults(Fault(kind="oversized_answer", params={"bytes": 1_500_000}))
    response = await send(asgi_client, await paid_header(asgi_client, payer_key, clock))
    assert response.status_code == 202 and len(response.content) > 1_500_000
    assert response.json()["taskId"] == sandbox_state.settlements()[0].task_id


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
async def test_compressed_bomb(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock, encoding: str
) -> None:
    sandbox_state.add_faults(Fault(kind="compressed_bomb", params={"encoding": encoding, "bytes": 8 * 1024 * 1024}))
    header = await paid_header(asgi_client, payer_key, clock)
    async with asgi_client.stream("POST", CREATE, json=BODY, headers={"X-PAYMENT": header}) as response:
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert response.status_code == 202 and response.headers["content-encoding"] == encoding
    assert len(raw) < 64 * 1024  # small on the wire…
    if encoding == "gzip":
        import gzip

        assert len(gzip.decompress(raw)) == 8 * 1024 * 1024  # …huge once inflated
    assert len(sandbox_state.settlements()) == 1
    with pytest.raises(ValueError, match="encoding"):
        Fault(kind="compressed_bomb", params={"encoding": "br"})


async def test_faults_about_payment_ignore_unpaid_requests(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    sandbox_state.add_faults(Fault(kind="drop_after_payment"), Fault(kind="error_before_settle"))
    assert (await asgi_client.post(CREATE, json=BODY)).status_code == 402  # the quote is untouched
    assert len(sandbox_state.armed_faults()) == 2


async def test_delay(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    sandbox_state.add_faults(Fault(kind="delay", match="create", params={"seconds": 0.3}))
    header = await paid_header(asgi_client, payer_key, clock)  # the unpaid quote takes the delay…
    sandbox_state.add_faults(Fault(kind="delay", match="create", params={"seconds": 1.0}))
    started = time.monotonic()
    pending = asyncio.create_task(send(asgi_client, header))
    while not sandbox_state.settlements() and time.monotonic() - started < 10:  # not a fixed sleep: a loaded machine
        await asyncio.sleep(0.01)
    assert len(sandbox_state.settlements()) == 1 and not pending.done()  # …and a paid create settles, then waits
    response = await pending
    assert response.status_code == 202 and time.monotonic() - started >= 1.0


async def test_delay_on_status_and_download(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    task_id = await new_task(asgi_client, payer_key, clock)
    sandbox_state.add_faults(Fault(kind="delay", times=2, params={"seconds": 0.1}))
    started = time.monotonic()
    await status_of(asgi_client, task_id)
    await asgi_client.get(f"/files/{task_id}.png")
    assert time.monotonic() - started >= 0.2
    assert sandbox_state.armed_faults() == []


async def test_payment_required_after_settle(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    sandbox_state.add_faults(Fault(kind="payment_required_after_settle"))
    header = await paid_header(asgi_client, payer_key, clock)
    response = await send(asgi_client, header)
    assert response.status_code == 402
    assert response.json()["error"] == "unexpected_settle_error"
    assert response.json()["accepts"][0]["maxAmountRequired"] == "1000000"
    assert len(sandbox_state.settlements()) == 1 and sandbox_state.balance(payer_key.address) == FULL - 1_000_000
    retry = await send(asgi_client, header)
    assert retry.status_code == 202 and retry.json()["taskId"] == sandbox_state.settlements()[0].task_id


async def test_settlement_pending(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    sandbox_state.add_faults(Fault(kind="settlement_pending"))
    header = await paid_header(asgi_client, payer_key, clock)
    response = await send(asgi_client, header)
    assert response.status_code == 402
    receipt = decode_payment_response(response.headers["x-payment-response"])
    assert (receipt.success, receipt.error_reason) == (False, "settlement_pending")
    assert receipt.transaction == sandbox_state.settlements()[0].transaction  # the money moved in that transaction
    assert sandbox_state.balance(payer_key.address) == FULL - 1_000_000


async def test_price_change(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    header = await paid_header(asgi_client, payer_key, clock)  # signed for 1.00
    sandbox_state.add_faults(Fault(kind="price_change", params={"amount": 250_000}))
    response = await send(asgi_client, header)
    assert response.status_code == 402
    assert response.json()["error"] == "invalid_exact_evm_payload_authorization_value"
    assert response.json()["accepts"][0]["maxAmountRequired"] == "1250000"
    assert sandbox_state.settlements() == []
    assert (await quote(asgi_client)).amount == 1_250_000  # from now on
    assert (await quote(asgi_client, {"prompt": "x", "templateData": {"duration": 4}})).amount == 750_000
    response, _ = await pay(asgi_client, payer_key, clock)
    assert response.status_code == 202 and sandbox_state.settlements()[0].amount == 1_250_000


async def test_malformed_json(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    sandbox_state.add_faults(Fault(kind="malformed_json", match="create"))
    response, _ = await pay(asgi_client, payer_key, clock)
    assert response.status_code == 202
    assert response.headers["content-type"] == "application/json"
    assert "X-PAYMENT-RESPONSE" in response.headers
    with pytest.raises(json.JSONDecodeError):
        response.json()
    task_id = sandbox_state.settlements()[0].task_id or ""
    assert response.text == '{"taskId": "' + task_id[: len(response.text) - 12]

    sandbox_state.add_faults(Fault(kind="malformed_json"))
    broken = await status_of(asgi_client, task_id)
    assert broken.status_code == 202
    with pytest.raises(json.JSONDecodeError):
        broken.json()
    assert (await status_of(asgi_client, task_id)).json() == {"status": "queued"}


async def test_wrong_content_type(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    sandbox_state.add_faults(Fault(kind="wrong_content_type", times=2))
    response, _ = await pay(asgi_client, payer_key, clock)
    assert response.status_code == 202
    assert response.headers["content-type"].startswith("text/html")
    task_id = response.json()["taskId"]  # the body itself looks right
    status = await status_of(asgi_client, task_id)
    assert status.headers["content-type"].startswith("text/html") and status.json() == {"status": "queued"}
    clock.advance(1000)
    sandbox_state.add_faults(Fault(kind="wrong_content_type", match="download"))
    video = await asgi_client.get(f"/files/{task_id}.mp4")
    assert video.status_code == 200 and video.headers["content-type"].startswith("text/html")
    assert video.content[4:8] == b"ftyp"


async def test_status_502_html(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    task_id = await new_task(asgi_client, payer_key, clock)
    sandbox_state.add_faults(Fault(kind="status_502_html", times=2))
    for _ in range(2):
        response = await status_of(asgi_client, task_id)
        assert response.status_code == 502 and response.headers["content-type"].startswith("text/html")
        assert "502 Bad Gateway" in response.text
    assert (await status_of(asgi_client, task_id)).status_code == 202


async def test_status_502_html_on_create_charges_nothing(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    sandbox_state.add_faults(Fault(kind="status_502_html", match="create"))
    header = await paid_header(asgi_client, payer_key, clock)
    assert (await send(asgi_client, header)).status_code == 502
    assert sandbox_state.settlements() == []


# ------------------------------------------------------------------------------------ task behaviour


async def test_fail(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    sandbox_state.add_faults(Fault(kind="fail", params={"error": "content policy"}))
    failing = await new_task(asgi_client, payer_key, clock)
    healthy = await new_task(asgi_client, payer_key, clock)
    clock.advance(1000)
    response = await status_of(asgi_client, failing)
    assert response.status_code == 500
    assert response.json() == {"status": "failed", "error": "content policy"}
    assert (await status_of(asgi_client, healthy)).status_code == 200
    assert (await asgi_client.get(f"/files/{failing}.mp4")).status_code == 404


async def test_fail_midway_and_by_task_id(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    task_id = await new_task(asgi_client, payer_key, clock)
    job = sandbox_state.job(task_id)
    assert job is not None
    sandbox_state.add_faults(Fault(kind="fail", task_id=task_id, params={"at": 0.5}))
    clock.advance(job.run_seconds * 0.3)
    assert (await status_of(asgi_client, task_id)).json()["status"] == "processing"
    clock.advance(job.run_seconds * 0.25)
    assert (await status_of(asgi_client, task_id)).json()["status"] == "failed"
    with pytest.raises(ValueError, match="no task"):
        sandbox_state.add_faults(Fault(kind="fail", task_id="missing"))


async def test_not_found(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    task_id = await new_task(asgi_client, payer_key, clock)
    other = await new_task(asgi_client, payer_key, clock)
    sandbox_state.add_faults(Fault(kind="not_found", task_id=task_id))
    assert (await status_of(asgi_client, other)).status_code == 202  # only the targeted task
    response = await status_of(asgi_client, task_id)
    assert (response.status_code, response.json()) == (404, {"status": "not_found"})
    assert (await status_of(asgi_client, task_id)).status_code == 202
    clock.advance(1000)
    sandbox_state.add_faults(Fault(kind="not_found", match="download"))
    assert (await asgi_client.get(f"/files/{task_id}.png")).status_code == 404
    assert (await asgi_client.get(f"/files/{task_id}.png")).status_code == 200


async def test_status_flapping(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    sandbox_state.add_faults(Fault(kind="status_flapping"))
    task_id = await new_task(asgi_client, payer_key, clock)
    job = sandbox_state.job(task_id)
    assert job is not None
    clock.advance(job.run_seconds * 0.5)
    seen = [(await status_of(asgi_client, task_id)).json()["status"] for _ in range(4)]
    assert seen == ["processing", "queued", "processing", "queued"]
    clock.advance(job.run_seconds)
    assert (await status_of(asgi_client, task_id)).json()["status"] == "completed"


async def test_progress_backwards(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    sandbox_state.add_faults(Fault(kind="progress_backwards"))
    task_id = await new_task(asgi_client, payer_key, clock)
    job = sandbox_state.job(task_id)
    assert job is not None
    clock.advance(job.run_seconds * 0.1)
    progress = []
    for _ in range(9):
        clock.advance(job.run_seconds * 0.09)
        progress.append((await status_of(asgi_client, task_id)).json()["progress"])
    drops = [i for i in range(1, len(progress)) if progress[i] < progress[i - 1]]
    assert len(drops) == 1, progress


async def test_unreachable_video(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    sandbox_state.add_faults(Fault(kind="unreachable_video"))
    task_id = await new_task(asgi_client, payer_key, clock)
    clock.advance(1000)
    body = (await status_of(asgi_client, task_id)).json()
    url = body["result"]["generation"]["video"]["url"]
    assert url.startswith("http://127.0.0.1:") and not url.startswith(BASE)
    assert body["result"]["generation"]["image"] == f"{BASE}/files/{task_id}.png"
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=2)
    sandbox_state.close()


async def test_huge_download(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    task_id = await new_task(asgi_client, payer_key, clock)
    clock.advance(1000)
    sandbox_state.add_faults(Fault(kind="huge_download", params={"bytes": 3 * 1024 * 1024 + 5}))
    async with asgi_client.stream("GET", f"/files/{task_id}.mp4") as response:
        assert response.headers["content-length"] == str(3 * 1024 * 1024 + 5)
        assert response.headers["content-type"] == "video/mp4"
        total = 0
        async for chunk in response.aiter_bytes():
            total += len(chunk)
    assert total == 3 * 1024 * 1024 + 5
    assert (await asgi_client.get(f"/files/{task_id}.mp4")).content[4:8] == b"ftyp"  # one request only


async def test_huge_download_in_process_default_and_chunked(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    task_id = await new_task(asgi_client, payer_key, clock)
    clock.advance(1000)
    sandbox_state.add_faults(Fault(kind="huge_download"))
    async with asgi_client.stream("GET", f"/files/{task_id}.mp4") as response:
        assert response.headers["content-length"] == str(64 * 1024 * 1024)
    sandbox_state.add_faults(Fault(kind="huge_download", params={"bytes": 10, "content_length": False}))
    response = await asgi_client.get(f"/files/{task_id}.mp4")
    assert "content-length" not in response.headers and response.content == bytes(10)


# -------------------------------------------------------------------------------- arming and loading


async def test_times_match_and_forever(
    asgi_client: httpx.AsyncClient, sandbox_state: Sandbox, payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    task_id = await new_task(asgi_client, payer_key, clock)
    sandbox_state.add_faults(Fault(kind="not_found", match="download"))
    assert (await status_of(asgi_client, task_id)).status_code == 202  # match: only downloads
    sandbox_state.clear_faults()
    sandbox_state.add_faults(Fault(kind="status_502_html", times=-1))
    for _ in range(5):
        assert (await status_of(asgi_client, task_id)).status_code == 502
    assert sandbox_state.armed_faults()[0][1] == -1


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="no parameter"):
        Fault(kind="delay", params={"secs": 1})
    with pytest.raises(ValueError, match="must be float"):
        Fault(kind="delay", params={"seconds": "1"})
    with pytest.raises(ValueError, match="cannot match"):
        Fault(kind="huge_download", match="status")
    with pytest.raises(ValueError, match="times"):
        Fault(kind="fail", times=0)
    with pytest.raises(ValueError):
        Fault(kind="explode")  # type: ignore[arg-type]
    assert Fault(kind="delay", params={"seconds": 2}).param("seconds") == 2.0
    assert Fault(kind="price_change").param("amount") == 500_000
    assert Fault.model_validate({"kind": "fail", "taskId": "t1"}).task_id == "t1"


def test_load_faults_from_json_and_toml(tmp_path: Path) -> None:
    as_json = tmp_path / "faults.json"
    as_json.write_text(json.dumps({"faults": [{"kind": "delay", "params": {"seconds": 2}}, {"kind": "fail"}]}))
    as_list = tmp_path / "list.json"
    as_list.write_text(json.dumps([{"kind": "status_502_html", "times": 3, "match": "status"}]))
    as_toml = tmp_path / "faults.toml"
    as_toml.write_text(
        '[[faults]]\nkind = "drop_after_payment"\nparams = { settle = false }\n\n'
        '[[faults]]\nkind = "huge_download"\ntimes = -1\n[faults.params]\nbytes = 1024\n'
    )
    assert [f.kind for f in load_faults(as_json)] == ["delay", "fail"]
    assert load_faults(as_list)[0].times == 3
    dropped, huge = load_faults(as_toml)
    assert dropped.param("settle") is False
    assert (huge.times, huge.param("bytes")) == (-1, 1024)
    bad = tmp_path / "bad.json"
    bad.write_text('[{"kind": "nope"}]')
    with pytest.raises(ValueError, match="invalid fault"):
        load_faults(bad)


async def test_faults_from_config_and_admin(
    make_app: Callable[..., Starlette], payer_key: PrivateKeySigner, clock: FakeClock
) -> None:
    app = make_app(faults=[Fault(kind="error_before_settle")])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=BASE) as client:
        header = await paid_header(client, payer_key, clock)
        assert (await send(client, header)).status_code == 500
        armed = await client.post("/_admin/faults", json={"faults": [{"kind": "error_after_settle"}]})
        assert armed.json() == {"armed": 1}
        assert (await send(client, header)).status_code == 500
        assert len(app.state.sandbox.settlements()) == 1
        bad = await client.post("/_admin/faults", json={"faults": [{"kind": "delay", "params": {"x": 1}}]})
        assert bad.status_code == 400 and "no parameter" in bad.json()["error"]
        assert (await client.post("/_admin/faults", json={"nope": []})).status_code == 400
