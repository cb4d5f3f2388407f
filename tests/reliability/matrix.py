"""The fault matrix: every sandbox fault, in each variant that matters, with the outcome it must have.

``ROWS`` is data. The tests (``test_fault_matrix.py``) and the report (``python -m benchmarks.reliability``)
run the same rows live: a real sandbox server on loopback, the sync or the async client with a real
wallet and SQLite ledger, one paid generation (create, wait, download). Each run is then audited against
the sandbox's own settlement record:

- settled payments == payments the ledger shows as paid, plus unknown where the answer was lost;
- no nonce settled twice, no request paid twice, exactly one signature, one X-PAYMENT header value;
- no video lost that was paid for: every settled taskId is in the ledger (or the payment is ``unknown``,
  counted as spent and shown to the operator, when a naive server never said which task it made);
- progress handed to the caller never goes backwards (and never from processing back to queued).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import httpx

from imagine_agent.client import AsyncImagineClient, AsyncJob, ImagineClient, Job, request_hash
from imagine_agent.errors import (
    DownloadError,
    GenerationFailedError,
    ImagineError,
    PaymentRejectedError,
    PaymentStateUnknownError,
    TaskNotFoundError,
    WalletFrozenError,
)
from imagine_agent.ledger import Caps, Ledger, PaymentState, open_ledger
from imagine_agent.models import TaskStatus
from imagine_agent.polling import PollPolicy
from imagine_agent.sandbox import Sandbox, SandboxConfig, SandboxServer
from imagine_agent.wallet import PaymentPolicy, Wallet
from tests.conftest import LOST_ANSWER_HELD, LOST_ANSWER_TIMEOUT, SPEED, CountingSigner

from .audit import count_double_paid, count_lost, count_phantom, progress_regressed

__all__ = [
    "ROWS",
    "SCENARIOS",
    "Outcome",
    "Result",
    "Row",
    "Trace",
    "audit",
    "run_row",
]

PROMPT = "a reliability test: a paper boat in a storm"
DURATION = 2  # seconds of video: 0.25 USDC
DOWNLOAD_LIMIT = 4 * 1024 * 1024  # the sandbox's MP4s are ~50 KB; huge_download sends gigabytes
POLL = PollPolicy(first=0.02, floor=0.02, cap=0.05)  # many reads per job, so progress faults show
SLOW = 150.0  # time scale for rows about progress: 0.4-1.2 s jobs, a dozen processing reads


class Outcome(StrEnum):
    """What the caller ends up with."""

    COMPLETED = "completed"
    RESENT = "same header re-sent, completed"
    UNKNOWN = "unknown, counted as spent"
    PENDING = "pending on chain, counted as spent"
    REJECTED = "rejected, nothing settled"
    FAILED = "failed, payment recorded"
    NOT_FOUND = "not found, payment recorded"
    DOWNLOAD_RETRIED = "download error, later download ok"
    DOWNLOAD_BROKEN = "download error, payment + taskId kept"
    FROZEN_THEN_SENT = "frozen: nothing sent; after unfreeze the same header, completed"


# The ledger state the one payment of a row must end in, by outcome.
LEDGER_STATE: dict[Outcome, PaymentState] = {
    **{outcome: PaymentState.PAID for outcome in Outcome},
    Outcome.UNKNOWN: PaymentState.UNKNOWN,
    Outcome.PENDING: PaymentState.PENDING,
    Outcome.REJECTED: PaymentState.REJECTED,
}


@dataclass(frozen=True)
class Row:
    """One fault in one variant, and what must come of it."""

    fault: str
    variant: str
    expect: Outcome
    arm: tuple[Mapping[str, Any], ...]  # faults armed on the sandbox before the run
    settled: int = 1  # payments the sandbox must have settled at the end
    replay: bool = True  # the sandbox answers a replayed settled header with its taskId (idempotent_replay)
    timeout: float = 10.0  # the client's HTTP timeout, seconds
    speed: float = SPEED
    client: Literal["sync", "async"] = "sync"
    x402: Literal["v1", "v2", "both"] = "v1"  # the protocol the sandbox speaks
    own_host_name: bool = False  # reach the sandbox by the machine's host name (it resolves to loopback)
    private_downloads: bool | None = None  # the client's setting (None: allowed when the API is private)

    @property
    def id(self) -> str:
        return f"{self.fault}-{self.variant}-{self.client}".replace(" ", "_").replace(",", "")

    @property
    def server(self) -> str:
        return "replaying" if self.replay else "naive"


def _rows(fault: str, *variants: tuple[str, Outcome, Sequence[Mapping[str, Any]], dict[str, Any]]) -> list[Row]:
    return [Row(fault, variant, expect, tuple(arm), **options) for variant, expect, arm, options in variants]


NAIVE: dict[str, Any] = {"replay": False}
# Rows that are not a sandbox fault but a client-side situation, run by their own driver.
SCENARIOS = ("kill_switch", "payment_identifier", "download_address")
V2: dict[str, Any] = {"x402": "v2"}


def _after(status: int, **params: Any) -> list[dict[str, Any]]:
    return [{"kind": "status_after_payment", "params": {"status": status, **params}}]


BASE_ROWS: list[Row] = [
    *_rows(
        "error_before_settle",
        ("once", Outcome.RESENT, [{"kind": "error_before_settle"}], {}),
        ("every time", Outcome.UNKNOWN, [{"kind": "error_before_settle", "times": -1}], {"settled": 0}),
    ),
    *_rows(
        "error_after_settle",
        ("replaying server", Outcome.RESENT, [{"kind": "error_after_settle"}], {}),
        ("naive server", Outcome.UNKNOWN, [{"kind": "error_after_settle"}], NAIVE),
    ),
    *_rows(
        "drop_after_payment",
        ("settle=true", Outcome.RESENT, [{"kind": "drop_after_payment"}], {}),
        ("settle=true, naive server", Outcome.UNKNOWN, [{"kind": "drop_after_payment"}], NAIVE),
        ("settle=false", Outcome.RESENT, [{"kind": "drop_after_payment", "params": {"settle": False}}], {}),
        (
            "settle=false, naive server",
            Outcome.RESENT,
            [{"kind": "drop_after_payment", "params": {"settle": False}}],
            NAIVE,
        ),
    ),
    *_rows(
        "delay",
        (
            "paid create, under the timeout",
            Outcome.COMPLETED,
            [{"kind": "delay", "match": "create", "params": {"seconds": 0.2, "paid_only": True}}],
            {},
        ),
        (
            "timeout after payment",
            Outcome.RESENT,
            [{"kind": "delay", "match": "create", "params": {"seconds": LOST_ANSWER_HELD, "paid_only": True}}],
            {"timeout": LOST_ANSWER_TIMEOUT},
        ),
        (
            "timeout after payment, naive server",
            Outcome.UNKNOWN,
            [{"kind": "delay", "match": "create", "params": {"seconds": LOST_ANSWER_HELD, "paid_only": True}}],
            {"timeout": LOST_ANSWER_TIMEOUT, **NAIVE},
        ),
        (
            "timeout after payment, every time",
            Outcome.UNKNOWN,
            [
                {
                    "kind": "delay",
                    "match": "create",
                    "times": -1,
                    "params": {"seconds": LOST_ANSWER_HELD, "paid_only": True},
                }
            ],
            {"timeout": LOST_ANSWER_TIMEOUT},
        ),
        (
            "quote, status and download",
            Outcome.COMPLETED,
            [{"kind": "delay", "match": path, "params": {"seconds": 0.2}} for path in ("create", "status", "download")],
            {},
        ),
    ),
    *_rows(
        "payment_required_after_settle",
        ("replaying server", Outcome.RESENT, [{"kind": "payment_required_after_settle"}], {}),
        ("naive server", Outcome.UNKNOWN, [{"kind": "payment_required_after_settle"}], NAIVE),
        ("every time", Outcome.UNKNOWN, [{"kind": "payment_required_after_settle", "times": -1}], {}),
        (
            "unrecognised reason, naive server",
            Outcome.UNKNOWN,
            [{"kind": "payment_required_after_settle", "params": {"error": "quota_exceeded_try_later"}}],
            NAIVE,
        ),
        (
            "unrecognised reason, replaying server",
            Outcome.RESENT,
            [{"kind": "payment_required_after_settle", "params": {"error": "quota_exceeded_try_later"}}],
            {},
        ),
    ),
    *_rows(
        "status_after_payment",
        ("204, naive server", Outcome.UNKNOWN, _after(204), NAIVE),
        ("303, naive server", Outcome.UNKNOWN, _after(303), NAIVE),
        ("409, naive server", Outcome.UNKNOWN, _after(409), NAIVE),
        ("422, naive server", Outcome.UNKNOWN, _after(422), NAIVE),
        ("429, naive server", Outcome.UNKNOWN, _after(429), NAIVE),
        ("cross-origin 307, naive server", Outcome.UNKNOWN, _after(307), NAIVE),
        ("cross-origin 307, replaying server", Outcome.RESENT, _after(307), {}),
        ("409, replaying server", Outcome.RESENT, _after(409), {}),
        ("409 before settlement, naive server", Outcome.RESENT, _after(409, settle=False), NAIVE),
    ),
    *_rows(
        "oversized_answer",
        ("2 MiB 202, naive server", Outcome.UNKNOWN, [{"kind": "oversized_answer"}], NAIVE),
        ("2 MiB 202, replaying server", Outcome.RESENT, [{"kind": "oversized_answer"}], {}),
    ),
    *_rows(
        "compressed_bomb",
        ("gzip, 64 MiB, naive server", Outcome.UNKNOWN, [{"kind": "compressed_bomb"}], NAIVE),
        (
            "zstd, 64 MiB, naive server",
            Outcome.UNKNOWN,
            [{"kind": "compressed_bomb", "params": {"encoding": "zstd"}}],
            NAIVE,
        ),
        ("gzip, 64 MiB, replaying server", Outcome.RESENT, [{"kind": "compressed_bomb"}], {}),
    ),
    *_rows(
        "kill_switch",
        ("frozen with a journaled header from an earlier run", Outcome.FROZEN_THEN_SENT, [], {}),
    ),
    *_rows(  # issue 22 (a): one payment-identifier per signature, on a v2 server that keeps ids
        "payment_identifier",
        ("v2 server keeping ids, another wallet bought the same prompt first", Outcome.COMPLETED, [], V2),
    ),
    *_rows(  # issue 22 (c): the download guard checks the address connected to, not the name
        "download_address",
        (
            "video URL names a host that resolves to loopback",
            Outcome.DOWNLOAD_BROKEN,
            [],
            {"own_host_name": True, "private_downloads": False},
        ),
    ),
    *_rows(
        "settlement_pending",
        ("tx broadcast, not confirmed", Outcome.PENDING, [{"kind": "settlement_pending"}], {}),
    ),
    *_rows(
        "price_change",
        (
            "between quote and payment",
            Outcome.REJECTED,
            [{"kind": "price_change", "params": {"amount": 250_000}}],
            {"settled": 0},
        ),
    ),
    *_rows(
        "malformed_json",
        ("paid create, replaying server", Outcome.RESENT, [{"kind": "malformed_json", "match": "create"}], {}),
        ("paid create, naive server", Outcome.UNKNOWN, [{"kind": "malformed_json", "match": "create"}], NAIVE),
        ("status", Outcome.COMPLETED, [{"kind": "malformed_json", "match": "status", "times": 2}], {}),
    ),
    *_rows(
        "wrong_content_type",
        ("paid create and status", Outcome.COMPLETED, [{"kind": "wrong_content_type", "times": 2}], {}),
        ("download", Outcome.DOWNLOAD_RETRIED, [{"kind": "wrong_content_type", "match": "download"}], {}),
    ),
    *_rows(
        "status_flapping",
        ("queued/processing", Outcome.COMPLETED, [{"kind": "status_flapping"}], {"speed": SLOW}),
    ),
    *_rows(
        "fail",
        ("at the end", Outcome.FAILED, [{"kind": "fail"}], {}),
        ("midway", Outcome.FAILED, [{"kind": "fail", "params": {"at": 0.5}}], {}),
    ),
    *_rows(
        "not_found",
        ("status, twice", Outcome.COMPLETED, [{"kind": "not_found", "times": 2}], {}),
        ("status, every time", Outcome.NOT_FOUND, [{"kind": "not_found", "times": -1}], {}),
        ("download", Outcome.DOWNLOAD_RETRIED, [{"kind": "not_found", "match": "download"}], {}),
    ),
    *_rows(
        "progress_backwards",
        ("one read halves", Outcome.COMPLETED, [{"kind": "progress_backwards"}], {"speed": SLOW}),
    ),
    *_rows(
        "unreachable_video",
        ("closed port", Outcome.DOWNLOAD_BROKEN, [{"kind": "unreachable_video"}], {}),
    ),
    *_rows(
        "huge_download",
        ("2 GiB declared", Outcome.DOWNLOAD_RETRIED, [{"kind": "huge_download"}], {}),
        (
            "2 GiB streamed, no length",
            Outcome.DOWNLOAD_RETRIED,
            [{"kind": "huge_download", "params": {"content_length": False}}],
            {},
        ),
    ),
    *_rows(
        "status_502_html",
        ("status, 3 times", Outcome.COMPLETED, [{"kind": "status_502_html", "times": 3}], {}),
        ("paid create", Outcome.RESENT, [{"kind": "status_502_html", "match": "create"}], {}),
        ("download, once", Outcome.COMPLETED, [{"kind": "status_502_html", "match": "download"}], {}),
        (
            "download, every time",
            Outcome.DOWNLOAD_BROKEN,
            [{"kind": "status_502_html", "match": "download", "times": -1}],
            {},
        ),
    ),
]

ROWS: list[Row] = [replace(row, client=client) for row in BASE_ROWS for client in ("sync", "async")]


# -------------------------------------------------------------------------------------------- running


@dataclass
class Trace:
    """What the caller saw."""

    outcome: str = ""
    error: str = ""
    task_id: str | None = None
    sent: list[str] = field(default_factory=list)  # X-PAYMENT values, in the order they went out
    updates: list[TaskStatus] = field(default_factory=list)
    origin: str = ""  # where the API lives: a header sent anywhere else is a leak
    off_origin: list[str] = field(default_factory=list)

    def note(self, request: httpx.Request) -> None:
        header = request.headers.get("x-payment") or request.headers.get("payment-signature")
        if header:
            self.sent.append(header)
            if self.origin and not str(request.url).startswith(self.origin):
                self.off_origin.append(str(request.url))

    def failed(self, exc: ImagineError) -> None:
        self.error = f"{type(exc).__name__}: {exc}"[:300]
        if isinstance(exc, PaymentStateUnknownError):
            self.outcome = Outcome.PENDING if "journaled as pending" in str(exc) else Outcome.UNKNOWN
        elif isinstance(exc, PaymentRejectedError):
            self.outcome = Outcome.REJECTED
        elif isinstance(exc, GenerationFailedError):
            self.outcome = Outcome.FAILED
        elif isinstance(exc, TaskNotFoundError):
            self.outcome = Outcome.NOT_FOUND
        else:
            self.outcome = f"error: {type(exc).__name__}"

    def completed(self) -> str:
        return Outcome.RESENT if len(self.sent) > 1 else Outcome.COMPLETED


def _playable(path: Path) -> bool:
    data = path.read_bytes()[:16]
    return path.stat().st_size > 1000 and data[4:8] == b"ftyp"


def _options(row: Row) -> dict[str, Any]:
    return {"allow_private_downloads": row.private_downloads} if row.private_downloads is not None else {}


def _another_wallet_first(url: str, workdir: Path) -> None:
    """Another wallet (its own ledger and key) buys the very same prompt on the same server first."""
    ledger = open_ledger(workdir / "another-wallet.sqlite3")
    try:
        wallet = Wallet(CountingSigner(), ledger, PaymentPolicy(caps=Caps(per_call=5_000_000)))
        with ImagineClient(url, wallet=wallet, poll=POLL) as c:
            c.create(PROMPT, duration=DURATION)
        if [p.state for p in ledger.payments()] != [PaymentState.PAID]:
            raise AssertionError("the other wallet's payment did not end paid")
    finally:
        ledger.close()


def _drive_sync(row: Row, url: str, wallet: Wallet, workdir: Path) -> Trace:
    trace = Trace(origin=url)
    if row.fault == "kill_switch":
        return _kill_switch_sync(row, url, wallet, trace)
    if row.fault == "payment_identifier":
        _another_wallet_first(url, workdir)
    with ImagineClient(
        url, wallet=wallet, poll=POLL, timeout=row.timeout, max_download_bytes=DOWNLOAD_LIMIT, **_options(row)
    ) as c:
        c.http.event_hooks["request"].append(trace.note)
        try:
            job: Job = c.create(PROMPT, duration=DURATION)
            trace.task_id = job.task_id
            trace.updates.extend(job.iter_updates())
            try:
                files = job.download(workdir / "first")
                trace.outcome = trace.completed() if _playable(files.video) else "unplayable video"
            except DownloadError as exc:
                trace.error = f"DownloadError: {exc}"[:300]
                try:
                    later = c.job(job.task_id).download(workdir / "later")
                    trace.outcome = Outcome.DOWNLOAD_RETRIED if _playable(later.video) else "unplayable video"
                except DownloadError:
                    trace.outcome = Outcome.DOWNLOAD_BROKEN
        except ImagineError as exc:
            trace.failed(exc)
    return trace


async def _drive_async(row: Row, url: str, wallet: Wallet, workdir: Path) -> Trace:
    trace = Trace(origin=url)
    if row.fault == "kill_switch":
        return await _kill_switch_async(row, url, wallet, trace)
    if row.fault == "payment_identifier":
        await asyncio.to_thread(_another_wallet_first, url, workdir)

    async def note(request: httpx.Request) -> None:
        trace.note(request)

    async with AsyncImagineClient(
        url, wallet=wallet, poll=POLL, timeout=row.timeout, max_download_bytes=DOWNLOAD_LIMIT, **_options(row)
    ) as c:
        c.http.event_hooks["request"].append(note)
        try:
            job: AsyncJob = await c.create(PROMPT, duration=DURATION)
            trace.task_id = job.task_id
            trace.updates.extend([status async for status in job.iter_updates()])
            try:
                files = await job.download(workdir / "first")
                trace.outcome = trace.completed() if _playable(files.video) else "unplayable video"
            except DownloadError as exc:
                trace.error = f"DownloadError: {exc}"[:300]
                try:
                    later = await c.job(job.task_id).download(workdir / "later")
                    trace.outcome = Outcome.DOWNLOAD_RETRIED if _playable(later.video) else "unplayable video"
                except DownloadError:
                    trace.outcome = Outcome.DOWNLOAD_BROKEN
        except ImagineError as exc:
            trace.failed(exc)
    return trace


def _journal_then_freeze(client: ImagineClient | AsyncImagineClient, required: Any, wallet: Wallet) -> Any:
    """An earlier run signed and journaled a header, then stopped before sending it; now the wallet is frozen."""
    request = client._request(PROMPT, {"duration": DURATION})
    auth = wallet.authorize(
        required,
        resource_url=client.create_url,
        request_hash=request_hash(client.base_url, request, None),
        description=PROMPT,
    )
    wallet.ledger.set_frozen(True, reason="matrix: kill switch")
    return request, wallet.resume(wallet.ledger.get(auth.payment_id), auth.requirement)


def _frozen_outcome(trace: Trace, frozen: Exception | None, held: list[str], wallet: Wallet, state: str) -> None:
    if frozen is None or held or state != PaymentState.RESERVED:
        trace.outcome = f"frozen: {type(frozen).__name__}, {len(held)} header(s) sent, ledger {state}"


def _kill_switch_sync(row: Row, url: str, wallet: Wallet, trace: Trace) -> Trace:
    with ImagineClient(url, wallet=wallet, poll=POLL, timeout=row.timeout) as c:
        c.http.event_hooks["request"].append(trace.note)
        request, auth = _journal_then_freeze(c, c.quote(PROMPT, duration=DURATION).required, wallet)
        frozen: Exception | None = None
        try:
            c.resend(request, auth)
        except WalletFrozenError as exc:
            frozen = exc
        held, state = list(trace.sent), wallet.ledger.get(auth.payment_id).state
        wallet.ledger.set_frozen(False)
        try:
            job = c.resend(request, auth)
            trace.task_id = job.task_id
            trace.updates.extend(job.iter_updates())
            trace.outcome = Outcome.FROZEN_THEN_SENT
        except ImagineError as exc:
            trace.failed(exc)
        _frozen_outcome(trace, frozen, held, wallet, state)
    return trace


async def _kill_switch_async(row: Row, url: str, wallet: Wallet, trace: Trace) -> Trace:
    async def note(request: httpx.Request) -> None:
        trace.note(request)

    async with AsyncImagineClient(url, wallet=wallet, poll=POLL, timeout=row.timeout) as c:
        c.http.event_hooks["request"].append(note)
        quote = await c.quote(PROMPT, duration=DURATION)
        request, auth = _journal_then_freeze(c, quote.required, wallet)
        frozen: Exception | None = None
        try:
            await c.resend(request, auth)
        except WalletFrozenError as exc:
            frozen = exc
        held, state = list(trace.sent), wallet.ledger.get(auth.payment_id).state
        wallet.ledger.set_frozen(False)
        try:
            job = await c.resend(request, auth)
            trace.task_id = job.task_id
            trace.updates.extend([status async for status in job.iter_updates()])
            trace.outcome = Outcome.FROZEN_THEN_SENT
        except ImagineError as exc:
            trace.failed(exc)
        _frozen_outcome(trace, frozen, held, wallet, state)
    return trace


@dataclass
class Result:
    """One row, run and audited. ``problems`` is empty when everything is as the row says."""

    row: Row
    trace: Trace
    settled: int
    double_paid: int
    lost: int
    phantom: int
    signed: int
    ledger: str  # the states of the ledger's payments, e.g. "paid"
    paid: int
    unknown: int
    fired: bool
    seconds: float
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def run_row(row: Row, workdir: Path) -> Result:
    """Run one row against a fresh sandbox server and audit it."""
    workdir.mkdir(parents=True, exist_ok=True)
    signer = CountingSigner()
    ledger = open_ledger(workdir / "ledger.sqlite3")
    wallet = Wallet(signer, ledger, PaymentPolicy(caps=Caps(per_call=5_000_000)))
    started = time.perf_counter()
    try:
        config = SandboxConfig(announce_sandbox=False, speed=row.speed, idempotent_replay=row.replay, x402=row.x402)
        with SandboxServer(config) as server:
            server.state.add_faults([dict(fault) for fault in row.arm])
            url = server.url.replace("127.0.0.1", socket.gethostname()) if row.own_host_name else server.url
            if row.client == "sync":
                trace = _drive_sync(row, url, wallet, workdir)
            else:
                trace = asyncio.run(_drive_async(row, url, wallet, workdir))
            return audit(
                row, trace, server.state, ledger, signer.signed, time.perf_counter() - started, payer=wallet.address
            )
    finally:
        ledger.close()


# ------------------------------------------------------------------------------------------- auditing


def _fired(row: Row, state: Sandbox, task_id: str | None) -> bool:
    """Did the sandbox apply the row's faults? (Finite ones are used up; traits left their mark.)"""
    if any(remaining > 0 for _, remaining in state.armed_faults()):
        return False
    job = state.job(task_id) if task_id else None
    if row.fault == "status_flapping":
        return job is not None and job.flap_reads >= 2
    if row.fault == "progress_backwards":
        return job is not None and not job.backwards
    return True


def audit(
    row: Row, trace: Trace, state: Sandbox, ledger: Ledger, signed: int, seconds: float, *, payer: str | None = None
) -> Result:
    """Audit the row's wallet: ``payer`` keeps the settlements of its key only (another wallet's, bought on
    purpose by a scenario, are that wallet's books)."""
    settlements = [s.to_wire() for s in state.settlements() if payer is None or str(s.payer).lower() == payer.lower()]
    payments = ledger.payments()
    paid = sum(1 for p in payments if p.state == PaymentState.PAID)
    unknown = sum(1 for p in payments if p.state in (PaymentState.UNKNOWN, PaymentState.PENDING))
    result = Result(
        row=row,
        trace=trace,
        settled=len(settlements),
        double_paid=count_double_paid(settlements),
        lost=count_lost(settlements, payments),
        phantom=count_phantom(settlements, payments),
        signed=signed,
        ledger="+".join(p.state.value for p in payments) or "-",
        paid=paid,
        unknown=unknown,
        fired=_fired(row, state, trace.task_id),
        seconds=seconds,
        problems=[],
    )
    problems = result.problems
    if trace.outcome != row.expect:
        problems.append(f"outcome {str(trace.outcome)!r}, expected {row.expect.value!r} ({trace.error})")
    if result.settled != row.settled:
        problems.append(f"the sandbox settled {result.settled} payment(s), expected {row.settled}")
    if not paid <= result.settled <= paid + unknown:
        problems.append(f"settled {result.settled} != ledger paid {paid} (+ unknown {unknown})")
    if result.double_paid:
        problems.append(f"{result.double_paid} request(s) paid twice")
    if result.lost:
        problems.append(f"{result.lost} settled payment(s) missing from the ledger")
    if result.phantom:
        problems.append(f"{result.phantom} ledger payment(s) the sandbox never settled")
    if signed != 1:
        problems.append(f"{signed} signatures for one request")
    if len(set(trace.sent)) > 1:
        problems.append(f"{len(set(trace.sent))} different X-PAYMENT headers sent")
    if trace.off_origin:
        problems.append(f"a payment header went to another origin: {trace.off_origin[0]}")
    expected_state = LEDGER_STATE.get(Outcome(row.expect))
    if [p.state for p in payments] != [expected_state]:
        problems.append(f"ledger holds {result.ledger!r}, expected one {expected_state} payment")
    if progress_regressed(trace.updates):
        problems.append(
            "progress went backwards for the caller: " + ", ".join(f"{s.status}:{s.progress}" for s in trace.updates)
        )
    if not result.fired:
        problems.append("the fault never fired")
    return result
