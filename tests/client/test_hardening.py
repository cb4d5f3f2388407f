"""Issue 11, money-path hardening: rules 1, 3, 4, 5, 6, 7, 8 against real parts (sandbox, ledgers, sockets).

Every test here fails on the code before the issue: it paid twice, freed budget that was spent, sent a
header where it should not go, or hung past its deadline.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import multiprocessing as mp
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from imagine_agent.client import AsyncImagineClient, ImagineClient, request_hash
from imagine_agent.config import Settings
from imagine_agent.errors import (
    DownloadError,
    ImagineTimeoutError,
    PaymentAbortedError,
    PaymentInFlightError,
    PaymentStateUnknownError,
    PriceChangedError,
    WalletFrozenError,
)
from imagine_agent.ledger import Caps, Ledger, PaymentState, open_ledger
from imagine_agent.models import TaskStatus
from imagine_agent.sandbox import SandboxConfig, SandboxServer
from imagine_agent.sandbox.paywall import payment_required_body
from imagine_agent.service import ImagineService
from imagine_agent.wallet import PaymentPolicy, Wallet
from imagine_agent.x402 import parse_payment_required
from tests.client.payer_process import generate_in_process
from tests.pg import postgres_server, postgres_url  # noqa: F401  (fixtures)

from ..conftest import FAST_POLL, FAST_POLL_SETTINGS, SPEED, CountingSigner
from ..spec import SPEC_402

pytestmark = pytest.mark.e2e
KEY = "0x" + "6b" * 32
SPEC_URL = "https://eliza.getimagine.club/generation/create"
API = "http://api.test"  # a public-looking name: no private-host exemption for downloads


def sent_headers(client: ImagineClient | AsyncImagineClient) -> list[str]:
    """Every X-PAYMENT the client puts on the wire, in order."""
    seen: list[str] = []
    if isinstance(client, ImagineClient):
        client.http.event_hooks["request"].append(lambda r: seen.append(r.headers.get("x-payment", "")))
    else:

        async def note(r: httpx.Request) -> None:
            seen.append(r.headers.get("x-payment", ""))

        client.http.event_hooks["request"].append(note)
    return seen


def paid(seen: list[str]) -> list[str]:
    return [h for h in seen if h]


_LOOPS: dict[int, asyncio.AbstractEventLoop] = {}  # one event loop per async client: its pool lives on it


def run(client: ImagineClient | AsyncImagineClient, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call a client method the same way for both clients (the async one on its own loop)."""
    return drive(client, getattr(client, method)(*args, **kwargs))


def drive(client: ImagineClient | AsyncImagineClient, result: Any) -> Any:
    if asyncio.iscoroutine(result):
        return _LOOPS[id(client)].run_until_complete(result)
    return result


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_client(flavour: str, url: str, wallet: Wallet | None, **options: Any) -> ImagineClient | AsyncImagineClient:
    options.setdefault("poll", FAST_POLL)
    if flavour == "sync":
        return ImagineClient(url, wallet=wallet, **options)
    loop = asyncio.new_event_loop()
    client = AsyncImagineClient(url, wallet=wallet, **options)
    _LOOPS[id(client)] = loop
    return client


def close(client: ImagineClient | AsyncImagineClient) -> None:
    if isinstance(client, ImagineClient):
        client.close()
    else:
        loop = _LOOPS.pop(id(client))
        loop.run_until_complete(client.aclose())
        loop.close()


# ------------------------------------------------------------------------------- rule 1: scripted answers


def scripted(paid_answer: Callable[[httpx.Request], httpx.Response]) -> httpx.MockTransport:
    """A server below the client: the spec's 402 for an unpaid create, ``paid_answer`` for a paid one."""
    config = SandboxConfig(announce_sandbox=False)

    def handle(request: httpx.Request) -> httpx.Response:
        if request.headers.get("x-payment"):
            return paid_answer(request)
        body = payment_required_body(
            config, resource=f"{API}/generation/create", amount=250_000, error="X-PAYMENT header is required"
        )
        return httpx.Response(402, json=body)

    return httpx.MockTransport(handle)


def _bomb() -> bytes:
    return gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=1)


class RawStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """Bytes exactly as a server sends them (httpx's own ByteStream would be read and decoded eagerly)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __iter__(self) -> Iterator[bytes]:
        for i in range(0, len(self.data), 65536):
            yield self.data[i : i + 65536]

    async def __aiter__(self) -> Any:
        for chunk in self:
            yield chunk


def raw(status: int, data: bytes, **headers: str) -> httpx.Response:
    return httpx.Response(status, stream=RawStream(data), headers={k.replace("_", "-"): v for k, v in headers.items()})


ANSWERS: dict[str, Callable[[httpx.Request], httpx.Response]] = {
    "402 with a numeric reason": lambda r: httpx.Response(402, json={"x402Version": 1, "error": 42, "accepts": []}),
    "402 with an unrecognised reason": lambda r: httpx.Response(402, json={"x402Version": 1, "error": "busy"}),
    "402 'expired' while the window is open": lambda r: httpx.Response(
        402, json={"x402Version": 1, "error": "invalid_exact_evm_payload_authorization_valid_before"}
    ),
    "409": lambda r: httpx.Response(409, json={"error": "conflict"}),
    "202 with Content-Encoding br": lambda r: raw(202, b"\x8b\x07\x80{}\x03", content_encoding="br"),
    "202 with corrupt gzip": lambda r: raw(202, b"\x1f\x8bnot gzip at all", content_encoding="gzip"),
    "202 with truncated gzip": lambda r: raw(202, gzip.compress(b'{"taskId": "t-1"}')[:12], content_encoding="gzip"),
    "202 gzip bomb (64 MiB)": lambda r: raw(202, _bomb(), content_encoding="gzip"),
    "202 over the size limit": lambda r: raw(202, json.dumps({"taskId": "t-1", "pad": "x" * 2_000_000}).encode()),
    "202 over the size limit, already read": lambda r: httpx.Response(202, json={"taskId": "t", "p": "x" * 2_000_000}),
}


@pytest.mark.parametrize("answer", list(ANSWERS), ids=list(ANSWERS))
def test_rule1_ambiguous_answers_after_payment_are_unknown(
    answer: str, flavour: str, make_wallet, ledger: Ledger, counting_signer: CountingSigner
) -> None:
    client = make_client(flavour, API, make_wallet(), transport=scripted(ANSWERS[answer]))
    seen = sent_headers(client)
    try:
        with pytest.raises(PaymentStateUnknownError) as info:
            run(client, "create", "an ambiguous answer", duration=2)
    finally:
        close(client)
    (record,) = ledger.payments()
    assert record.state is PaymentState.UNKNOWN, (answer, record.reason)
    assert "counts as spent" in str(info.value)
    assert counting_signer.signed == 1 and len(set(paid(seen))) == 1
    assert ledger.totals(Caps(per_call=5_000_000)).unknown == record.amount  # counted as spent, not freed


def test_rule1_a_named_failure_that_agrees_with_our_values_is_still_a_rejection(
    flavour: str, make_wallet, ledger: Ledger
) -> None:
    client = make_client(
        flavour,
        API,
        make_wallet(),
        transport=scripted(
            lambda r: httpx.Response(402, json={"x402Version": 1, "error": "insufficient_funds", "accepts": []})
        ),
    )
    try:
        with pytest.raises(Exception) as info:
            run(client, "create", "no funds", duration=2)
    finally:
        close(client)
    assert type(info.value).__name__ == "PaymentRejectedError"
    assert ledger.payments()[0].state is PaymentState.REJECTED  # held until validBefore, then released


def test_rule1_expired_claim_after_settlement_on_a_real_server(flavour: str, make_wallet, ledger: Ledger) -> None:
    """The sandbox settles, then says "expired" with a minute left: old code released it as rejected."""
    with SandboxServer(SandboxConfig(announce_sandbox=False, speed=SPEED, idempotent_replay=False)) as server:
        server.state.add_faults(
            {
                "kind": "payment_required_after_settle",
                "params": {"error": "invalid_exact_evm_payload_authorization_valid_before"},
            }
        )
        client = make_client(flavour, server.url, make_wallet())
        try:
            with pytest.raises(PaymentStateUnknownError):
                run(client, "create", "settled then called expired", duration=2)
        finally:
            close(client)
        assert len(server.state.settlements()) == 1
    assert [p.state for p in ledger.payments()] == [PaymentState.UNKNOWN]


# ------------------------------------------------------------------------------ rule 3: release vs signer


class ReleasingSigner(CountingSigner):
    """Signs, but while it signs another process (its own ledger connection) frees the reservation."""

    def __init__(self, ledger_path: Path) -> None:
        super().__init__()
        self.ledger_path = ledger_path

    def sign_typed_data(self, typed_data: Any) -> bytes:
        with open_ledger(self.ledger_path) as other:
            for record in other.in_flight():
                other.release_unsigned(record.id, reason="reconcile in another process: looked abandoned")
        return super().sign_typed_data(typed_data)


def test_rule3_a_signer_whose_reservation_was_released_fails_closed(flavour: str, tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    signer = ReleasingSigner(path)
    with open_ledger(path) as ledger, SandboxServer(SandboxConfig(announce_sandbox=False, speed=SPEED)) as server:
        wallet = Wallet(signer, ledger, PaymentPolicy(caps=Caps(per_call=5_000_000)))
        client = make_client(flavour, server.url, wallet)
        seen = sent_headers(client)
        try:
            with pytest.raises(PaymentAbortedError) as info:
                run(client, "create", "released while signing", duration=2)
        finally:
            close(client)
        assert "never sent" in str(info.value)
        assert paid(seen) == [] and server.state.settlements() == []
        (record,) = ledger.payments()
        assert record.state is PaymentState.RELEASED and record.header is None


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_rule3_release_unsigned_and_journal_race_exactly_one_wins(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = str(tmp_path / "l.sqlite3") if engine == "sqlite" else request.getfixturevalue("postgres_url")
    required = parse_payment_required(SPEC_402)
    with open_ledger(url) as ledger:
        for i in range(12):
            record = ledger.reserve(
                request_hash=f"r{i}",
                amount=1_000_000,
                asset=required.accepts[0].asset,
                network="base",
                pay_to=required.accepts[0].pay_to,
                payer="0x" + "11" * 20,
                resource=SPEC_URL,
                caps=Caps(per_call=10**7),
            )
            barrier = threading.Barrier(2)
            results: dict[str, Any] = {}

            def journal(rid: str = record.id) -> None:
                barrier.wait()
                try:
                    ledger.journal_authorization(rid, nonce="0x" + f"{i:064x}", valid_before=2**40, header=f"h{i}")
                    results["journal"] = True
                except ValueError:
                    results["journal"] = False

            def release(rid: str = record.id) -> None:
                barrier.wait()
                results["release"] = ledger.release_unsigned(rid, reason="race")

            threads = [threading.Thread(target=journal), threading.Thread(target=release)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert results["journal"] != results["release"], results
            final = ledger.get(record.id)
            assert (final.state is PaymentState.RELEASED) == results["release"]
            assert (final.header is not None) == results["journal"]


# ----------------------------------------------------------------------- rules 4 + 5: attach-or-pay, atomic


def test_rule5_wallet_authorize_refuses_a_second_signature_unless_new(
    make_wallet, ledger: Ledger, counting_signer: CountingSigner
) -> None:
    wallet = make_wallet()
    required = parse_payment_required(SPEC_402)
    first = wallet.authorize(required, resource_url=SPEC_URL, request_hash="same")
    with pytest.raises(PaymentInFlightError) as info:
        wallet.authorize(required, resource_url=SPEC_URL, request_hash="same")
    assert info.value.payment_id == first.payment_id and "no second one was signed" in str(info.value)
    assert counting_signer.signed == 1
    for state in ("unknown", "rejected"):
        getattr(wallet.ledger, f"mark_{state}")(first.payment_id, reason="test")
        with pytest.raises(PaymentInFlightError):
            wallet.authorize(required, resource_url=SPEC_URL, request_hash="same")
        assert counting_signer.signed == 1
        if state == "unknown":
            break
    again = wallet.authorize(required, resource_url=SPEC_URL, request_hash="same", new=True)
    assert again.nonce != first.nonce and counting_signer.signed == 2
    other = wallet.authorize(required, resource_url=SPEC_URL, request_hash="another request")
    assert other.payment_id not in (first.payment_id, again.payment_id)


def test_rule5_a_second_client_create_after_a_lost_answer_is_refused(
    flavour: str, make_wallet, ledger: Ledger, counting_signer: CountingSigner
) -> None:
    with SandboxServer(SandboxConfig(announce_sandbox=False, speed=SPEED, idempotent_replay=False)) as server:
        server.state.add_faults({"kind": "drop_after_payment", "times": -1})
        client = make_client(flavour, server.url, make_wallet())
        try:
            with pytest.raises(PaymentStateUnknownError):
                run(client, "create", "the same video", duration=2)
            with pytest.raises(PaymentInFlightError):
                run(client, "create", "the same video", duration=2)
            assert counting_signer.signed == 1 and len(server.state.settlements()) == 1
            server.state.reset()
            job = run(client, "create", "the same video", duration=2, new=True)  # on purpose: pays again
            assert job.payment is not None and counting_signer.signed == 2
        finally:
            close(client)


def test_rule4_identical_generates_on_threads_pay_once(tmp_path: Path) -> None:
    with SandboxServer(SandboxConfig(announce_sandbox=False, speed=SPEED)) as server:
        settings = Settings(
            base_url=server.url,
            private_key=KEY,
            data_dir=tmp_path,
            **FAST_POLL_SETTINGS,
            approval_threshold=None,
        )
        with ImagineService.create(settings) as service:
            barrier = threading.Barrier(6)
            outcomes: list[Any] = []

            def go() -> None:
                barrier.wait()
                outcomes.append(service.generate("two calls in one model turn", duration=2, wait=False))

            threads = [threading.Thread(target=go) for _ in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(outcomes) == 6 and len({o.task_id for o in outcomes}) == 1
            assert sum(not o.attached for o in outcomes) == 1
            assert len(server.state.settlements()) == 1
            assert [p.state for p in service.ledger.payments()] == [PaymentState.PAID]


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_rule4_identical_generates_in_processes_pay_once(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ledger_url = None if engine == "sqlite" else request.getfixturevalue("postgres_url")
    with SandboxServer(SandboxConfig(announce_sandbox=False, speed=SPEED)) as server:
        ctx = mp.get_context("spawn")
        start, out = ctx.Event(), ctx.Queue()
        procs = [
            ctx.Process(
                target=generate_in_process,
                args=(server.url, str(tmp_path), ledger_url, KEY, FAST_POLL_SETTINGS, start, out),
            )
            for _ in range(4)
        ]
        for p in procs:
            p.start()
        time.sleep(0.5)  # let them import and open the ledger; correctness does not depend on it
        start.set()
        results = [json.loads(out.get(timeout=180)) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert all("task" in r for r in results), results
        assert len({r["task"] for r in results}) == 1
        assert len(server.state.settlements()) == 1
    with open_ledger(ledger_url or tmp_path / "ledger.sqlite3") as ledger:
        assert [
            p.state for p in ledger.payments(states=[PaymentState.PAID, PaymentState.UNKNOWN, PaymentState.RESERVED])
        ] == [PaymentState.PAID]


# ------------------------------------------------------------------- rule 6: redirects, hops and deadlines


def test_rule6_download_redirects_are_checked_hop_by_hop(flavour: str, tmp_path: Path) -> None:
    mp4 = b"\0\0\0\x18ftypmp42" + b"\0" * 2000

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.url.host == "files.test" and path == "/to-private.mp4":
            return httpx.Response(302, headers={"location": "http://127.0.0.1:9/secret.mp4"})
        if request.url.host == "files.test" and path == "/to-ftp.mp4":
            return httpx.Response(302, headers={"location": "ftp://files.test/v.mp4"})
        if request.url.host == "files.test" and path == "/loop.mp4":
            return httpx.Response(302, headers={"location": "/loop.mp4"})
        if request.url.host == "files.test" and path == "/ok.mp4":
            return httpx.Response(307, headers={"location": "https://cdn.test/v.mp4"})
        if request.url.host in ("cdn.test", "127.0.0.1"):
            return httpx.Response(200, content=mp4, headers={"content-type": "video/mp4"})
        raise AssertionError(f"a refused hop was fetched: {request.url}")

    client = make_client(flavour, API, None, transport=httpx.MockTransport(handle))

    def fetch(name: str) -> Any:
        return fetch_with(client, f"http://files.test/{name}", tmp_path / name)

    try:
        for name, why in (("to-private.mp4", "private"), ("to-ftp.mp4", "not http"), ("loop.mp4", "redirected")):
            with pytest.raises(DownloadError, match=why):
                fetch(name)
        assert fetch("ok.mp4").video.read_bytes() == mp4
    finally:
        close(client)
    allowed = make_client(flavour, API, None, transport=httpx.MockTransport(handle), allow_private_downloads=True)
    try:  # configured like image URLs: the operator may allow private file hosts
        assert fetch_with(allowed, "http://127.0.0.1:9/direct.mp4", tmp_path / "p").video.read_bytes() == mp4
    finally:
        close(allowed)


def fetch_with(client: ImagineClient | AsyncImagineClient, url: str, directory: Path) -> Any:
    status = TaskStatus.model_validate({"status": "completed", "result": {"generation": {"video": {"url": url}}}})
    return run(client, "download", status, directory, include_preview=False)


class Trickle:
    """A real loopback HTTP server that answers every request one byte per second, forever."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n")
                while not self.stop.is_set():
                    conn.sendall(b" ")
                    time.sleep(1.0)
            except OSError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def trickle() -> Iterator[Trickle]:
    server = Trickle()
    yield server
    server.close()


def test_rule6_wait_returns_by_its_deadline_against_a_trickling_server(flavour: str, trickle: Trickle) -> None:
    client = make_client(flavour, trickle.url, None, timeout=30.0)
    started = time.monotonic()
    try:
        job = client.job("task-1")
        with pytest.raises(ImagineTimeoutError):
            drive(client, job.wait(timeout=3, initial_delay=0))
    finally:
        close(client)
    elapsed = time.monotonic() - started
    assert 2.5 <= elapsed < 10, elapsed  # the old per-read timeout never fired: a byte a second resets it


# ------------------------------------------------------------------------------------ rule 7: kill switch


class FreezingSigner(CountingSigner):
    """The operator pulls the kill switch while the payment is being signed."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__()
        self.ledger = ledger

    def sign_typed_data(self, typed_data: Any) -> bytes:
        self.ledger.set_frozen(True, reason="operator")
        return super().sign_typed_data(typed_data)


def test_rule7_frozen_right_before_the_send_sends_nothing(flavour: str, ledger: Ledger) -> None:
    signer = FreezingSigner(ledger)
    with SandboxServer(SandboxConfig(announce_sandbox=False, speed=SPEED)) as server:
        client = make_client(flavour, server.url, Wallet(signer, ledger, PaymentPolicy(caps=Caps(per_call=10**7))))
        seen = sent_headers(client)
        try:
            with pytest.raises(WalletFrozenError, match="not sent"):
                run(client, "create", "frozen mid-payment", duration=2)
        finally:
            close(client)
        assert paid(seen) == [] and server.state.settlements() == []
    (record,) = ledger.payments()
    assert record.state is PaymentState.RESERVED and record.header is not None  # journaled, held, not sent


def test_rule7_service_recovery_waits_for_unfreeze_then_sends_the_same_header(tmp_path: Path) -> None:
    with SandboxServer(SandboxConfig(announce_sandbox=False, speed=SPEED)) as server:
        settings = Settings(
            base_url=server.url,
            private_key=KEY,
            data_dir=tmp_path,
            **FAST_POLL_SETTINGS,
            approval_threshold=None,
        )
        with ImagineService.create(settings) as service:
            request, _ = service.build_request("recovered after the freeze", duration=2)
            required = service.client.quote(request).required
            auth = service.wallet.authorize(
                required,
                resource_url=service.client.create_url,
                request_hash=request_hash(service.client.base_url, request, None),
            )
            service.freeze("incident")
            seen = sent_headers(service.client)
            with pytest.raises(WalletFrozenError):
                service.generate("recovered after the freeze", duration=2, wait=False)
            assert paid(seen) == [] and server.state.settlements() == []
            assert service.ledger.get(auth.payment_id).state is PaymentState.RESERVED
            service.unfreeze()
            outcome = service.generate("recovered after the freeze", duration=2, wait=False)
            assert outcome.attached and paid(seen) == [auth.header]
            assert len(server.state.settlements()) == 1


# --------------------------------------------------------------------------------- rule 8: quoted price


def test_rule8_a_price_rise_after_the_quote_is_refused_with_nothing_signed(tmp_path: Path) -> None:
    with SandboxServer(SandboxConfig(announce_sandbox=False, speed=SPEED)) as server:
        settings = Settings(
            base_url=server.url,
            private_key=KEY,
            data_dir=tmp_path,
            **FAST_POLL_SETTINGS,
            approval_threshold=None,
        )
        with ImagineService.create(settings) as service:
            quoted = service.quote("quoted at one price", duration=2)
            server.state.raise_price(100_000)
            with pytest.raises(PriceChangedError, match="Nothing was signed"):
                service.generate("quoted at one price", duration=2, wait=False)
            assert service.ledger.payments() == [] and server.state.settlements() == []
            fresh = service.quote("quoted at one price", duration=2)  # a new quote binds the new price
            outcome = service.generate("quoted at one price", duration=2, wait=False)
            assert outcome.payment is not None
            assert outcome.payment.amount == fresh.quote.amount == quoted.quote.amount + 100_000
            assert server.state.settlements()[0].amount == outcome.payment.amount  # what was signed is shown


def test_rule8_the_client_refuses_above_max_amount(flavour: str, make_wallet, counting_signer: CountingSigner) -> None:
    with SandboxServer(SandboxConfig(announce_sandbox=False, speed=SPEED)) as server:
        client = make_client(flavour, server.url, make_wallet())
        try:
            with pytest.raises(PriceChangedError):
                run(client, "create", "capped by a quote", duration=2, max_amount=249_999)
        finally:
            close(client)
    assert counting_signer.signed == 0
