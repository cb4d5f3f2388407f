"""Issue 13, done-when: interop with the official x402 implementations, installed from the registries.

- Our CLI pays an official v1 (``x402-express@1.2.0``) and v2 (``@x402/express@2.27.0``) server whose
  facilitator is our sandbox: directly, and behind a proxy that rewrites Host and strips a mount prefix.
- The official v1 (``x402-fetch``) and v2 (``@x402/fetch``) clients pay our sandbox.
- The PyPI ``x402`` SDK pays our sandbox in v1 and v2.
- Their headers decode with our models; ours validate with their zod schemas.

The npm packages come from ``tests/interop/node/package-lock.json`` (``.ci/setup-interop.sh``).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from imagine_agent.config import IMAGINE_PAY_TO
from imagine_agent.models import PaymentPayloadV2, SettlementResponse
from imagine_agent.sandbox import SandboxConfig, SandboxServer
from imagine_agent.x402 import (
    PrivateKeySigner,
    decode_payment_header,
    decode_payment_response,
    encode_payment_header,
    parse_402,
    sign_payment,
)

NODE_DIR = Path(__file__).parent / "node"
SETUP = ".ci/setup-interop.sh"
SPEED = 600.0
BODY = {"prompt": "a paper lantern drifting over a river at dusk", "templateData": {"duration": 4}}
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def _require_node() -> str:
    node = shutil.which("node")
    missing = None if node else "node is not installed"
    if missing is None and not (NODE_DIR / "node_modules" / "@x402" / "express").is_dir():
        missing = f"the official x402 npm packages are not installed in {NODE_DIR}"
    if missing is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{missing}: CI runs {SETUP} first; the interop tests must not be skipped", pytrace=False)
        pytest.skip(f"{missing}: run `bash {SETUP}`")
    assert node is not None
    return node


def _node(*args: str, stdin: str | None = None) -> dict[str, Any]:
    done = subprocess.run(
        [_require_node(), "interop.mjs", *args], cwd=NODE_DIR, input=stdin, capture_output=True, text=True, timeout=120
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"node {args[0]} printed nothing (exit {done.returncode}): {done.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert "error" not in result, result["error"]
    return result


class OfficialServer:
    """An official x402 Express server (v1 or v2) on a free loopback port."""

    def __init__(self, version: int, facilitator: str) -> None:
        self.process = subprocess.Popen(
            [_require_node(), "interop.mjs", f"server-v{version}", facilitator, IMAGINE_PAY_TO],
            cwd=NODE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("listening "):
            self.process.kill()
            raise AssertionError(f"server-v{version} did not start: {line}{self.process.stderr.read()[-2000:]}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class RewritingProxy:
    """A reverse proxy on loopback, as deployed in front of an app: it serves ``/<prefix>/...`` from
    the app's ``/...`` and tells the app an internal ``Host``, so the app names a resource URL the
    client never requested."""

    def __init__(self, upstream: str, *, prefix: str = "/imagine", host: str = "video-api.internal:8080") -> None:
        client = httpx.Client(base_url=upstream, timeout=60)
        self.seen_hosts: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                if not self.path.startswith(prefix + "/"):
                    self.send_error(404)
                    return
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                headers["host"] = host
                try:
                    answer = client.request(self.command, self.path[len(prefix) :], headers=headers, content=body)
                except httpx.TransportError:  # the app behind it has stopped (a request in flight at teardown)
                    self.send_error(502)
                    return
                outer.seen_hosts.append(host)
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(name, value)
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = _forward

        outer = self
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.client = client
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{prefix}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.client.close()


@pytest.fixture
def dual_sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(speed=SPEED, x402="both")) as server:
        yield server


def _cli(base_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "none.toml").touch()  # an existing empty config: the CLI refuses a config path that is not a file
    env = {
        **os.environ,
        "IMAGINE_PRIVATE_KEY": "0x" + secrets.token_hex(32),
        "IMAGINE_DATA_DIR": str(tmp_path),
        "IMAGINE_CONFIG": str(tmp_path / "none.toml"),
    }
    env.pop("IMAGINE_BASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "imagine_agent", *args, "--base-url", base_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("route", ["direct", "proxy"])
def test_our_cli_pays_an_official_server_whose_facilitator_is_our_sandbox(
    version: int, route: str, dual_sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    _require_node()
    server = OfficialServer(version, dual_sandbox_server.url)
    proxy = RewritingProxy(server.url) if route == "proxy" else None
    try:
        quote = _cli(proxy.url if proxy else server.url, tmp_path, "quote", BODY["prompt"], "--duration", "4", "--json")
        assert quote.returncode == 0, quote.stderr
        assert json.loads(quote.stdout)["x402Version"] == version
        done = _cli(
            proxy.url if proxy else server.url,
            tmp_path,
            "generate",
            BODY["prompt"],
            "--duration",
            "4",
            "--no-wait",
            "--json",
        )
    finally:
        if proxy is not None:
            proxy.close()
        server.close()
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout)
    (settled,) = dual_sandbox_server.state.settlements()
    assert out["paid"]["amount"] == "500000" == str(settled.amount)
    assert out["paid"]["transaction"] == settled.transaction  # the receipt came back in the version's header
    assert out["paid"]["network"] == "base"
    if proxy is not None:
        assert proxy.seen_hosts and "names resource" in done.stderr  # a warning, not a refusal (issue 13.3)
        assert "video-api.internal:8080" in done.stderr


@pytest.mark.parametrize("version", [1, 2])
def test_the_official_clients_pay_our_sandbox(version: int, tmp_path: Path) -> None:
    with SandboxServer(SandboxConfig(speed=SPEED, x402="v1" if version == 1 else "v2")) as server:
        key = "0x" + secrets.token_hex(32)
        result = _node(f"pay-v{version}", server.url + "/generation/create", key, json.dumps(BODY))
        settlements = server.state.settlements()
    assert result["status"] == 202, result
    task_id = json.loads(result["body"])["taskId"]
    assert [s.task_id for s in settlements] == [task_id]
    ((sent),) = result["sent"]
    assert sent["name"] == ("x-payment" if version == 1 else "payment-signature")
    payment = decode_payment_header(sent["value"])  # their header, our model
    assert payment.x402_version == version
    assert payment.payload.authorization.from_ == PrivateKeySigner(key).address
    assert isinstance(payment, PaymentPayloadV2) is (version == 2)
    receipt = decode_payment_response(result["headers"]["x-payment-response" if version == 1 else "payment-response"])
    assert receipt.success and receipt.transaction == settlements[0].transaction


@pytest.mark.parametrize("version", [1, 2])
async def test_the_pypi_x402_sdk_pays_our_sandbox(version: int) -> None:
    from eth_account import Account
    from x402 import x402Client
    from x402.http.clients.httpx import x402AsyncTransport
    from x402.mechanisms.evm.exact.register import register_exact_evm_client
    from x402.mechanisms.evm.signers import EthAccountSigner

    account = Account.from_key("0x" + secrets.token_hex(32))
    client = register_exact_evm_client(x402Client(), EthAccountSigner(account))
    sent: list[httpx.Request] = []

    async def note(request: httpx.Request) -> None:
        sent.append(request)

    with SandboxServer(SandboxConfig(speed=SPEED, x402="v1" if version == 1 else "v2")) as server:
        transport = x402AsyncTransport(client, transport=httpx.AsyncHTTPTransport())
        async with httpx.AsyncClient(transport=transport, event_hooks={"request": [note]}, timeout=30) as http:
            response = await http.post(server.url + "/generation/create", json=BODY)
        settlements = server.state.settlements()
    assert response.status_code == 202, response.text
    assert [s.task_id for s in settlements] == [response.json()["taskId"]]
    assert settlements[0].payer.lower() == account.address.lower()


def test_our_headers_validate_with_their_schemas() -> None:
    """Our v1 X-PAYMENT, v2 PAYMENT-SIGNATURE, our sandbox's PAYMENT-REQUIRED and receipts, judged by
    the official packages' own zod schemas (``@x402/core/schemas``, ``x402/types``)."""
    signer = PrivateKeySigner.generate()
    payments: dict[int, Any] = {}
    required_v2: Any = None
    requirements_v1: list[Any] = []
    for version in (1, 2):
        with SandboxServer(SandboxConfig(speed=SPEED, x402="v1" if version == 1 else "v2")) as server:
            answer = httpx.post(server.url + "/generation/create", json=BODY)
            required = parse_402(answer.headers, answer.content)
            if version == 2:
                required_v2 = json.loads(base64.b64decode(answer.headers["payment-required"]))
            else:
                requirements_v1 = answer.json()["accepts"]
            payment = sign_payment(required.accepts[0], signer, now=int(server.state.now()))
            header = encode_payment_header(payment)
            payments[version] = json.loads(base64.b64decode(header))
            paid = httpx.post(
                server.url + "/generation/create",
                json=BODY,
                headers={"X-PAYMENT" if version == 1 else "PAYMENT-SIGNATURE": header},
            )
            assert paid.status_code == 202, paid.text  # and our sandbox accepts what we sign
    receipt = SettlementResponse(success=True, transaction="0x" + "ab" * 32, network="base", payer=signer.address)
    verdicts = _node(
        "validate",
        stdin=json.dumps(
            {
                "paymentPayloadV1": [payments[1]],
                "paymentPayloadV2": [payments[2]],
                "paymentRequiredV2": [required_v2],
                "paymentRequirementsV1": requirements_v1,
                "settleResponseV1": [receipt.to_wire()],
            }
        ),
    )
    assert verdicts == {
        "paymentPayloadV1": ["ok"],
        "paymentPayloadV2": ["ok"],
        "paymentRequiredV2": ["ok"],
        "paymentRequirementsV1": ["ok"],
        "settleResponseV1": ["ok"],
    }


class OfficialServerWithIds(OfficialServer):
    """``@x402/express@2.27.0`` declaring ``payment-identifier`` (required) with the extension's own server
    helpers; its 202 names the id ``extractPaymentIdentifier`` read from the payment."""

    def __init__(self, facilitator: str) -> None:
        self.process = subprocess.Popen(
            [_require_node(), "interop.mjs", "server-v2-ids", facilitator, IMAGINE_PAY_TO],
            cwd=NODE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("listening "):
            self.process.kill()
            raise AssertionError(f"server-v2-ids did not start: {line}{self.process.stderr.read()[-2000:]}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"


def test_one_payment_identifier_per_signature_on_the_official_server_declaring_it(
    dual_sandbox_server: SandboxServer,
) -> None:
    """Issue 22 (a): each signature carries its own id, which the official extension validates and extracts;
    buying the same request again signs under a new id. The official server does not enforce ids itself
    (pinned below): deduplication and the 409 are the application's, as in our sandbox."""
    from imagine_agent.client import ImagineClient
    from imagine_agent.ledger import Caps
    from imagine_agent.wallet import PaymentPolicy, Wallet
    from imagine_agent.x402 import payment_id_of

    _require_node()
    server = OfficialServerWithIds(dual_sandbox_server.url)
    seen: list[tuple[str, Any]] = []

    def note(response: httpx.Response) -> None:
        header = response.request.headers.get("payment-signature")
        if header and response.status_code == 202:
            response.read()
            seen.append((header, response.json()["paymentId"]))

    try:
        with _temp_ledger() as ledger:
            wallet = Wallet(PrivateKeySigner.generate(), ledger, PaymentPolicy(caps=Caps(per_call=5_000_000)))
            with ImagineClient(server.url, wallet=wallet) as client:
                client.http.event_hooks["response"].append(note)
                client.create(BODY["prompt"], duration=4)
                client.create(BODY["prompt"], duration=4, new=True)
        url = server.url + "/generation/create"
        first = decode_payment_header(seen[0][0])
        answer = httpx.post(url, json=BODY)
        requirement = parse_402(answer.headers, answer.content).accepts[0]
        other = sign_payment(
            requirement, PrivateKeySigner.generate(), now=int(dual_sandbox_server.state.now())
        ).to_wire()
        other["extensions"] = first.to_wire()["extensions"]  # another payment under a used id
        reused = httpx.post(url, json=BODY, headers={"payment-signature": _b64(other)})
        bare = sign_payment(
            requirement, PrivateKeySigner.generate(), now=int(dual_sandbox_server.state.now())
        ).to_wire()
        bare.pop("extensions", None)  # no id, though the server declared it required
        missing = httpx.post(url, json=BODY, headers={"payment-signature": _b64(bare)})
    finally:
        server.close()
    assert len(seen) == 2
    ours = [payment_id_of(decode_payment_header(header)) for header, _ in seen]  # type: ignore[arg-type]
    assert [extracted for _, extracted in seen] == ours  # the official extension read and validated our ids
    assert ours[0] != ours[1] and all(i is not None and i.startswith("pay_") and len(i) == 36 for i in ours)
    # What the official server does with ids by itself: nothing beyond validating their shape.
    assert reused.status_code == 202 and reused.json()["paymentId"] == ours[0]
    assert missing.status_code == 202 and missing.json()["paymentId"] is None
    assert len(dual_sandbox_server.state.settlements()) == 4


def _b64(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def _temp_ledger() -> Any:
    import tempfile

    from imagine_agent.ledger import open_ledger

    return open_ledger(Path(tempfile.mkdtemp()) / "ledger.sqlite3")
