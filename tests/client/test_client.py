"""The client against the sandbox: 402 -> sign -> 202, every status, downloads — sync (loopback) and async (ASGI)."""

from __future__ import annotations

from pathlib import Path

import av
import httpx
import pytest

from imagine_agent.client import ImagineClient
from imagine_agent.errors import (
    BudgetExceededError,
    DownloadError,
    GenerationFailedError,
    ImagineTimeoutError,
    InvalidRequestError,
    PaymentRejectedError,
    PolicyViolationError,
    TaskNotFoundError,
)
from imagine_agent.ledger import PaymentState
from imagine_agent.sandbox import SandboxConfig, SandboxServer

from ..conftest import FAST_POLL, SPEED

pytestmark = pytest.mark.e2e


def test_pay_wait_download_sync(
    imagine_client: ImagineClient, sandbox_server: SandboxServer, counting_signer, ledger, tmp_path: Path
) -> None:
    quote = imagine_client.quote("a corgi surfing at sunset", duration=8)
    assert quote.amount == 1_000_000 and counting_signer.signed == 0
    job = imagine_client.create("a corgi surfing at sunset", duration=8)
    assert counting_signer.signed == 1
    seen = [s.status for s in job.iter_updates()]
    assert seen[-1] == "completed" and "processing" in seen
    files = job.download(tmp_path)
    with av.open(str(files.video)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert sum(1 for _ in container.decode(stream)) > 5
    assert files.preview is not None and files.preview.read_bytes().startswith(b"\x89PNG")
    settled = sandbox_server.state.settlements()
    assert len(settled) == 1 and settled[0].task_id == job.task_id
    assert job.payment is not None and job.payment.transaction == settled[0].transaction
    (record,) = ledger.payments()
    assert record.state == PaymentState.PAID and record.task_id == job.task_id and record.amount == 1_000_000


async def test_pay_wait_async(async_imagine_client, counting_signer, ledger) -> None:
    job = await async_imagine_client.create("a fox in the snow", duration=4)
    progress = [s.progress async for s in job if s.status == "processing"]
    assert progress == sorted(progress)
    assert job.last.status == "completed" and job.last.video_url
    assert counting_signer.signed == 1
    assert [s.task_id for s in async_imagine_client.sandbox_state.settlements()] == [job.task_id]
    assert ledger.payments()[0].state == PaymentState.PAID


async def test_async_download_to_disk(async_imagine_client, tmp_path: Path) -> None:
    job = await async_imagine_client.create("a lighthouse", duration=2)
    files = await job.download(tmp_path)
    assert files.video.stat().st_size > 1000


def test_wrong_payee_is_refused_before_signing(make_wallet, counting_signer, ledger) -> None:
    with (
        SandboxServer(SandboxConfig(announce_sandbox=False, speed=SPEED, pay_to="0x" + "66" * 20)) as server,
        ImagineClient(server.url, wallet=make_wallet(), poll=FAST_POLL) as c,
    ):
        with pytest.raises(PolicyViolationError, match="payTo allowlist"):
            c.create("a cat")
        assert server.state.settlements() == []
    assert counting_signer.signed == 0 and ledger.payments() == []


def test_wrong_network_and_price_over_cap_refused(make_wallet, counting_signer, ledger) -> None:
    with (
        SandboxServer(SandboxConfig(announce_sandbox=False, speed=SPEED, network="base-sepolia")) as server,
        ImagineClient(server.url, wallet=make_wallet(), poll=FAST_POLL) as c,
    ):
        with pytest.raises(PolicyViolationError):
            c.create("a cat")
    with (
        SandboxServer(SandboxConfig(announce_sandbox=False, speed=SPEED)) as server,
        ImagineClient(server.url, wallet=make_wallet(per_call=999_999), poll=FAST_POLL) as c,
    ):
        with pytest.raises(BudgetExceededError, match="per-call cap"):
            c.create("a cat", duration=8)
    assert counting_signer.signed == 0 and ledger.payments() == []


def test_bad_input_sends_nothing(imagine_client: ImagineClient, sandbox_server: SandboxServer, counting_signer) -> None:
    requests: list[httpx.Request] = []
    imagine_client.http.event_hooks["request"].append(requests.append)
    for bad in ({"duration": 0}, {"image": "ftp://x/y.png"}, {"sora_video_id": "../x"}):
        with pytest.raises(InvalidRequestError):
            imagine_client.create("a cat", **bad)
    with pytest.raises(InvalidRequestError):
        imagine_client.create("")
    with pytest.raises(InvalidRequestError):
        imagine_client.status("../../etc/passwd")
    assert requests == [] and counting_signer.signed == 0


def test_failed_generation_keeps_the_payment(
    imagine_client: ImagineClient, sandbox_server: SandboxServer, ledger
) -> None:
    sandbox_server.state.add_faults({"kind": "fail"})
    job = imagine_client.create("a doomed video")
    with pytest.raises(GenerationFailedError) as info:
        job.wait()
    assert info.value.task_id == job.task_id
    assert job.last is not None and job.last.status == "failed"
    assert ledger.payments()[0].state == PaymentState.PAID


def test_not_found(imagine_client: ImagineClient) -> None:
    with pytest.raises(TaskNotFoundError):
        imagine_client.job("00000000-0000-4000-8000-000000000000").wait(initial_delay=0)
    assert imagine_client.status("00000000-0000-4000-8000-000000000000").status == "not_found"


def test_status_of_each_state(imagine_client: ImagineClient) -> None:
    job = imagine_client.create("a slow one")
    first = job.status()
    assert first.status in ("queued", "processing")
    assert job.wait().status == "completed"
    assert imagine_client.status(job.task_id).status == "completed"


def test_wait_timeout_says_how_to_resume(make_wallet) -> None:
    with (
        SandboxServer(SandboxConfig(announce_sandbox=False, speed=1.0)) as server,
        ImagineClient(server.url, wallet=make_wallet(), poll=FAST_POLL) as c,
    ):
        job = c.create("a long one")
        with pytest.raises(ImagineTimeoutError, match=f"imagine-agent wait {job.task_id}"):
            job.wait(timeout=0.3)


def test_insufficient_funds_is_a_rejection(make_wallet, ledger) -> None:
    with (
        SandboxServer(SandboxConfig(announce_sandbox=False, speed=SPEED, default_balance=0)) as server,
        ImagineClient(server.url, wallet=make_wallet(), poll=FAST_POLL) as c,
    ):
        with pytest.raises(PaymentRejectedError, match="insufficient_funds"):
            c.create("a cat")
    (record,) = ledger.payments()
    assert record.state == PaymentState.REJECTED  # held until validBefore, then released


def test_download_size_limit(sandbox_server: SandboxServer, make_wallet, tmp_path: Path) -> None:
    with ImagineClient(sandbox_server.url, wallet=make_wallet(), poll=FAST_POLL, max_download_bytes=1000) as c:
        job = c.create("a big one")
        job.wait()
        with pytest.raises(DownloadError, match="limit"):
            job.download(tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.mp4*"))


def test_huge_streamed_download_is_cut_off(
    imagine_client: ImagineClient, sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    imagine_client.max_download_bytes = 2 * 1024 * 1024
    sandbox_server.state.add_faults({"kind": "huge_download", "params": {"content_length": False}})
    job = imagine_client.create("endless")
    job.wait()
    with pytest.raises(DownloadError, match="limit"):
        job.download(tmp_path / "out", include_preview=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_unreachable_video_is_a_download_error(
    imagine_client: ImagineClient, sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    sandbox_server.state.add_faults({"kind": "unreachable_video"})
    job = imagine_client.create("gone")
    job.wait()
    with pytest.raises(DownloadError):
        job.download(tmp_path)


def test_template_data_sent_as_json_string_by_default(imagine_client: ImagineClient) -> None:
    sent: list[httpx.Request] = []
    imagine_client.http.event_hooks["request"].append(sent.append)
    imagine_client.quote("a cat", duration=4, auto_enhance=True)
    import json

    body = json.loads(sent[0].content)
    assert isinstance(body["templateData"], str)
    assert json.loads(body["templateData"]) == {"duration": 4, "autoClank": False, "autoEnhance": True}


def test_image_file_goes_multipart(
    imagine_client: ImagineClient, sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    from PIL import Image

    from imagine_agent.models import ImageFile

    path = tmp_path / "in.png"
    Image.new("RGB", (8, 8), "red").save(path)
    job = imagine_client.create("animate this", image_file=ImageFile.from_path(path))
    assert job.wait().status == "completed"
