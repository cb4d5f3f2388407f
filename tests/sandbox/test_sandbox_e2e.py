"""The sandbox over real HTTP: uvicorn in a thread (``SandboxServer``) or a process (``run``), sync httpx."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import av
import httpx
import pytest

from imagine_agent.sandbox import Fault, SandboxConfig, SandboxServer
from imagine_agent.x402 import PrivateKeySigner, decode_payment_response, encode_payment_header, sign_payment
from imagine_agent.x402 import parse_payment_required as parse_402
from tests.conftest import LOST_ANSWER_HELD, LOST_ANSWER_TIMEOUT
from tests.embedded import subprocess_env
from tests.sandbox.support import BODY, CREATE

pytestmark = pytest.mark.e2e

FAST = SandboxConfig(job_seconds=(0.3, 0.6))


def paid(client: httpx.Client, signer: PrivateKeySigner) -> tuple[httpx.Response, str]:
    quote = client.post(CREATE, json=BODY)
    assert quote.status_code == 402
    requirement = parse_402(quote.json()).accepts[0]
    assert requirement.resource == f"{client.base_url}".rstrip("/") + CREATE
    header = encode_payment_header(sign_payment(requirement, signer, now=int(time.time())))
    return client.post(CREATE, json=BODY, headers={"X-PAYMENT": header}), header


def test_starts_fast_serves_and_stops_cleanly() -> None:
    started = time.monotonic()
    server = SandboxServer(FAST).start()
    assert time.monotonic() - started < 1.0
    port = server.port
    try:
        assert server.url == f"http://127.0.0.1:{port}"
        assert httpx.get(server.url + "/supported").status_code == 200
        assert server.state is server.app.state.sandbox
    finally:
        server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/supported", timeout=1)
    with pytest.raises(RuntimeError):
        _ = server.url


def test_port_is_released_after_stop() -> None:
    with SandboxServer(FAST) as server:
        port = server.port
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_full_purchase_over_http() -> None:
    """Also: every answer says it is the sandbox (a loopback client then records sandbox money)."""
    signer = PrivateKeySigner.generate()
    with SandboxServer(FAST) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        response, _ = paid(client, signer)
        assert response.status_code == 202
        receipt = decode_payment_response(response.headers["X-PAYMENT-RESPONSE"])
        assert receipt.success and receipt.payer == signer.address
        assert response.headers["X-Imagine-Sandbox"] == "1"
        task_id = response.json()["taskId"]
        seen = set()
        deadline = time.monotonic() + 10
        while True:
            status = client.get(f"/generation/{task_id}/status")
            seen.add(status.json()["status"])
            if status.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.03)
        assert status.status_code == 200 and seen & {"queued", "processing"}
        video = client.get(status.json()["result"]["generation"]["video"]["url"])
        assert video.headers["content-type"] == "video/mp4"
        with av.open(io.BytesIO(video.content), mode="r") as container:
            assert container.streams.video[0].codec_context.name == "h264"
            assert len(list(container.decode(video=0))) == 48  # the 8 s paid for, at 6 fps
        [row] = client.get("/_admin/settlements").json()
        assert row["taskId"] == task_id and row["amount"] == "1000000"


def test_drop_after_payment_breaks_the_real_connection(caplog: pytest.LogCaptureFixture) -> None:
    signer = PrivateKeySigner.generate()
    config = SandboxConfig(faults=[Fault(kind="drop_after_payment")])
    with SandboxServer(config) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            paid(client, signer)
        assert len(server.state.settlements()) == 1
        assert client.get("/supported").status_code == 200  # the server itself is fine
    # uvicorn may log the drop after the server thread is joined, so only its form is asserted: never a traceback.
    dropped = [r for r in caplog.records if r.name == "uvicorn.error" and "dropped" in r.getMessage()]
    assert all(r.levelno == logging.INFO and r.exc_info is None for r in dropped)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


def test_delay_makes_a_real_client_time_out_after_settling() -> None:
    signer = PrivateKeySigner.generate()
    with SandboxServer(FAST) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        quote = client.post(CREATE, json=BODY)
        requirement = parse_402(quote.json()).accepts[0]
        header = encode_payment_header(sign_payment(requirement, signer, now=int(time.time())))
        # Settled at once, answered later than the client waits (at a 0.3 s timeout the settlement itself could come
        # after it on a loaded machine).
        server.state.add_faults(Fault(kind="delay", match="create", params={"seconds": LOST_ANSWER_HELD}))
        with pytest.raises(httpx.ReadTimeout):
            client.post(CREATE, json=BODY, headers={"X-PAYMENT": header}, timeout=LOST_ANSWER_TIMEOUT)
        assert len(server.state.settlements()) == 1
        time.sleep(LOST_ANSWER_HELD - LOST_ANSWER_TIMEOUT + 0.2)  # until the held answer has gone
        retry = client.post(CREATE, json=BODY, headers={"X-PAYMENT": header})
        assert retry.status_code == 202 and retry.json()["taskId"] == server.state.settlements()[0].task_id


def test_huge_download_streams_without_end_in_sight() -> None:
    signer = PrivateKeySigner.generate()
    with SandboxServer(FAST) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        task_id = paid(client, signer)[0].json()["taskId"]
        time.sleep(0.7)
        assert client.get(f"/generation/{task_id}/status").status_code == 200
        server.state.add_faults(Fault(kind="huge_download"))
        started = time.monotonic()
        with client.stream("GET", f"/files/{task_id}.mp4") as response:
            assert response.headers["content-length"] == str(2 * 1024**3)
            received = 0
            for chunk in response.iter_bytes():
                received += len(chunk)
                if received > 8 * 1024 * 1024:
                    break
        assert time.monotonic() - started < 5
    # leaving the with-block stopped the server although the stream was abandoned mid-way


def test_unreachable_video_url_refuses_connections() -> None:
    signer = PrivateKeySigner.generate()
    config = SandboxConfig(job_seconds=(0.1, 0.1), faults=[Fault(kind="unreachable_video")])
    with SandboxServer(config) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        task_id = paid(client, signer)[0].json()["taskId"]
        time.sleep(0.2)
        url = client.get(f"/generation/{task_id}/status").json()["result"]["generation"]["video"]["url"]
        with pytest.raises(httpx.ConnectError):
            client.get(url)


def test_run_serves_until_interrupted(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = f"from imagine_agent.sandbox import SandboxConfig, run; run('127.0.0.1', {port}, SandboxConfig(speed=10))"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.post(f"http://127.0.0.1:{port}{CREATE}", json=BODY, timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        assert response.status_code == 402
        assert response.json()["accepts"][0]["resource"] == f"http://127.0.0.1:{port}/generation/create"
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
    assert "no real money moves" in stderr


# One process: the CLI with its embedded sandbox, entered as the console script enters it (``main``). Which of the
# modules no run needs were loaded when it ended, and its output.
_NOT_NEEDED = ("eth_account", "py_ecc", "httpx._main", "pygments", "websockets")
_RUN_AND_LIST = f"""
import contextlib, io, json, sys
from imagine_agent.cli import main
sys.argv[0] = "imagine-agent"
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
    main()
loaded = {{name for name, module in sys.modules.items() if module is not None}}
print(json.dumps({{"loaded": sorted(set({_NOT_NEEDED!r}) & loaded), "out": out.getvalue()}}))
"""


@pytest.mark.parametrize("argv", [["quote", "a cat", "--json"], ["generate", "a cat", "--json"]])
def test_a_run_on_the_embedded_sandbox_loads_only_what_it_needs(tmp_path: Path, argv: list[str]) -> None:
    """The sandbox recovers signers itself (``sandbox/eip712.py``, held to eth-account in test_sandbox_eip712.py):
    eth-account costs a second to import, which every run on the embedded sandbox used to pay. httpx's own command
    line (``main`` skips it) and uvicorn's websockets protocol (the sandbox serves plain HTTP) cost 0.16 s more."""
    env = subprocess_env(tmp_path / "data")
    done = subprocess.run(
        [sys.executable, "-c", _RUN_AND_LIST, *argv],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["loaded"] == []
    answer = json.loads(report["out"])
    if argv[0] == "generate":
        assert answer["status"] == "completed" and answer["paid"]["payer"]
    else:
        assert int(answer["amount"]) > 0
