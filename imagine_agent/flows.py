"""The paid-request protocol as I/O-free generators, driven by the sync and the async client alike.

A flow yields *steps* and receives their results, the way httpx drives ``Auth.auth_flow``:
``httpx.Request`` (send it, get the response back), ``Sleep``, ``Call`` (a blocking wallet or ledger
call: the async driver runs it in a thread), ``Update`` (a status to hand to the caller) and
``Fetch`` (stream a file to disk). Exceptions raised while running a step are thrown back into the
flow, so network faults are handled here, once, for both clients.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
from pydantic import ValidationError
from pydantic_core import from_json

from .errors import (
    DownloadError,
    GenerationFailedError,
    ImagineConnectionError,
    ImagineStatusError,
    ImagineTimeoutError,
    InvalidRequestError,
    PaymentRejectedError,
    PaymentStateUnknownError,
    ProtocolError,
    TaskNotFoundError,
)
from .models import PaymentRequired, SettlementResponse, TaskCreated, TaskStatus
from .polling import PollPolicy, PollSchedule
from .x402 import parse_402, receipt_from, with_payment_id

__all__ = [
    "Call",
    "Created",
    "Fetch",
    "Flow",
    "PaymentInfo",
    "Sleep",
    "TransientDownloadError",
    "Update",
    "create_flow",
    "download_flow",
    "paid_flow",
    "quote_flow",
    "status_flow",
    "wait_flow",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Call:
    fn: Callable[[], Any]


@dataclass(frozen=True)
class Update:
    status: TaskStatus


@dataclass(frozen=True)
class Fetch:
    url: str
    path: Path
    max_bytes: int
    kind: Literal["video", "image"]


Step = httpx.Request | Sleep | Call | Update | Fetch
Flow = Generator[Step, Any, T]

UNPAID_ATTEMPTS = 3
PAID_ATTEMPTS = 4
MAX_TRANSIENT_POLLS = 30
MAX_NOT_FOUND_POLLS = 3
SETTLE_MARGIN = 6  # facilitators refuse an authorization with validBefore < now + 6 s


@dataclass(frozen=True)
class PaymentInfo:
    """What was paid for a task (atomic units), as shown to users and scripts."""

    payment_id: str
    amount: int
    asset: str
    network: str
    pay_to: str
    payer: str
    transaction: str | None
    paid_by: Literal["x402", "credits"] = "x402"

    @classmethod
    def credits(cls) -> PaymentInfo:
        """A create the server accepted without a 402: paid from provider credits, 0 USDC, no caps touched."""
        return cls("", 0, "", "", "", "", None, paid_by="credits")

    def to_json(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "amount": str(self.amount),
            "asset": self.asset,
            "network": self.network,
            "payTo": self.pay_to,
            "payer": self.payer,
            "transaction": self.transaction,
        }
        if self.paid_by == "credits":
            wire["paidBy"] = "credits"
        return wire


@dataclass(frozen=True)
class Created:
    task_id: str
    payment: PaymentInfo | None


def backoff(attempt: int, base: float = 0.5, cap: float = 8.0) -> float:
    return float(min(cap, base * 2 ** (attempt - 1)))


def connection_error(exc: httpx.TransportError, what: str) -> ImagineConnectionError:
    if isinstance(exc, httpx.TimeoutException):
        return ImagineTimeoutError(f"{what}: no answer in time ({type(exc).__name__}); check the network and retry")
    return ImagineConnectionError(f"{what}: {type(exc).__name__}: {exc or 'connection failed'}; check the base URL")


def _json(content: bytes) -> Any:
    """Parse an untrusted body; ``ValueError`` if it is not JSON.

    pydantic-core's parser caps the nesting depth itself. ``json.loads`` recurses on the C stack up to
    ``sys.getrecursionlimit()``, which importing eth-account raises to 100000 (py_ecc): a few hundred KB
    of ``[`` then crash the whole process with a segfault instead of raising.
    """
    return from_json(content)


def _error_text(resp: httpx.Response) -> str:
    try:
        body = _json(resp.content)
    except ValueError:
        return resp.text[:200].strip()
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or body.get("detail") or body)[:500]
    return str(body)[:200]


def _send_unpaid(make: Callable[[], httpx.Request], what: str) -> Flow[httpx.Response]:
    """Send a request that carries no payment: safe to retry on any network fault or 5xx."""
    for attempt in range(1, UNPAID_ATTEMPTS + 1):
        try:
            resp: httpx.Response = yield make()
        except httpx.TransportError as exc:
            if attempt == UNPAID_ATTEMPTS:
                raise connection_error(exc, what) from None
        else:
            if resp.status_code < 500:
                return resp
            if attempt == UNPAID_ATTEMPTS:
                raise ImagineStatusError(
                    f"{what}: the server answered HTTP {resp.status_code} {attempt} times; try again later",
                    status_code=resp.status_code,
                    body=resp.text,
                )
        yield Sleep(backoff(attempt))
    raise AssertionError("unreachable")


def _payment_required(resp: httpx.Response, what: str) -> PaymentRequired:
    if resp.status_code == 402:
        return parse_402(resp.headers, resp.content)
    if resp.status_code in (400, 413, 415, 422):
        raise InvalidRequestError(f"the server rejected the request: {_error_text(resp)}")
    raise ImagineStatusError(
        f"{what}: expected 402 Payment Required, got HTTP {resp.status_code}",
        status_code=resp.status_code,
        body=resp.text,
    )


def quote_flow(make: Callable[[str | None], httpx.Request]) -> Flow[PaymentRequired]:
    """Ask the price: send the create request without payment and read the 402. Nothing is signed."""
    resp = yield from _send_unpaid(lambda: make(None), "quote")
    return _payment_required(resp, "quote")


def _task_created(resp: httpx.Response) -> TaskCreated | None:
    try:
        return TaskCreated.model_validate_json(resp.content)
    except ValidationError:
        return None


def _receipt(resp: httpx.Response) -> SettlementResponse | None:
    """``PAYMENT-RESPONSE`` (v2), then ``X-PAYMENT-RESPONSE`` (v1); an unreadable one is no receipt."""
    return receipt_from(resp.headers)


def _settlement_pending(resp: httpx.Response) -> str | None:
    """The transaction hash of a ``settlement_pending`` answer: the payment went on chain, not yet seen."""
    receipt = receipt_from(resp.headers)
    if receipt is not None and not receipt.success and receipt.error_reason == "settlement_pending":
        return receipt.transaction or None
    return None


def create_flow(
    make: Callable[[str | None], httpx.Request],
    wallet: Any,
    *,
    resource_url: str,
    request_hash: str,
    description: str,
    clock: Callable[[], float] = time.time,
    on_402: Callable[[PaymentRequired], None] | None = None,
    payment_key: str | None = None,
) -> Flow[Created]:
    """create → 402 → policy → reserve → sign → journal → retry with the payment → 202 taskId.

    A 202 with no 402 before it was paid from the provider's credits: 0 USDC, nothing reserved.
    ``payment_key`` (default: the request hash) derives the v2 ``payment-identifier``.
    """
    resp = yield from _send_unpaid(lambda: make(None), "create")
    if resp.status_code in (200, 201, 202):
        created = _task_created(resp)
        if created is None:
            raise ProtocolError(f"create answered {resp.status_code} without a taskId")
        return Created(created.task_id, PaymentInfo.credits())
    required = with_payment_id(_payment_required(resp, "create"), payment_key or request_hash)
    if on_402 is not None:
        on_402(required)  # e.g. refuse a video model the 402 does not list, before anything is signed
    if wallet is None:
        raise PaymentRejectedError("this request costs money and no wallet is configured (set IMAGINE_PRIVATE_KEY)")
    auth = yield Call(
        lambda: wallet.authorize(
            required, resource_url=resource_url, request_hash=request_hash, description=description
        )
    )
    return (yield from paid_flow(make, wallet, auth, clock=clock))


def paid_flow(
    make: Callable[[str | None], httpx.Request],
    wallet: Any,
    auth: Any,
    *,
    clock: Callable[[], float] = time.time,
    ambiguous: bool = False,
) -> Flow[Created]:
    """Send one signed header until it lands; never sign again (money-safety rule 3).

    A timeout, dropped connection or 5xx after the header went out is ambiguous: the same header is
    re-sent while it is valid (the chain settles a nonce once). An explicit 402 is a rejection, unless it
    names a failed settlement (which may still land) or our spent nonce: those are ambiguous too.
    When the header expires without an answer the payment is ``unknown`` and counts as spent.
    """
    reasons: list[str] = []
    attempt = 0
    settled_elsewhere = False
    while True:
        attempt += 1
        try:
            resp: httpx.Response = yield make(auth.header)
        except httpx.TransportError as exc:
            ambiguous = True
            reasons.append(f"{type(exc).__name__} after the payment was sent")
        else:
            if resp.status_code in (200, 201, 202):
                created = _task_created(resp)
                receipt = _receipt(resp)
                if created is None:
                    ambiguous = True
                    reasons.append(f"HTTP {resp.status_code} without a taskId")
                else:
                    task_id = created.task_id
                    yield Call(lambda: wallet.settled(auth, task_id=task_id, receipt=receipt))  # noqa: B023
                    info = _payment_info(auth, receipt)
                    return Created(created.task_id, info)
            elif (pending_tx := _settlement_pending(resp)) is not None:
                reason = f"settlement_pending: transaction {pending_tx} not confirmed yet"
                yield Call(lambda: wallet.ledger.mark_pending(auth.payment_id, transaction=pending_tx,
                                                              reason=reason))  # noqa: B023
                raise PaymentStateUnknownError(
                    f"payment {auth.payment_id} went on chain in transaction {pending_tx}, not confirmed yet. "
                    "It counts as spent and is journaled as pending; `imagine-agent reconcile` settles it by "
                    "that transaction. Nothing will be paid again for this request.",
                    payment_id=auth.payment_id,
                    nonce=auth.nonce,
                )
            elif resp.status_code >= 500:
                ambiguous = True
                reasons.append(f"HTTP {resp.status_code} after the payment was sent")
            elif resp.status_code == 400:
                # x402 v2: a malformed payment gets 400 before any settlement is attempted.
                reasons.append(f"HTTP 400, malformed payment: {_error_text(resp)}")
                break
            else:
                reason = _rejection_reason(resp)
                reasons.append(reason)
                if "nonce" in reason.lower():
                    settled_elsewhere = True  # our own nonce is spent: an earlier attempt settled
                elif "settle" in reason.lower():
                    # A settlement that failed (x402 ``unexpected_settle_error``…) may still land on chain:
                    # ambiguous, not a rejection, so it is never released as if it provably did not settle.
                    ambiguous = True
                if attempt >= 2:  # one re-send: a server that settled, then said 402, answers it
                    break
        if attempt >= PAID_ATTEMPTS or clock() + SETTLE_MARGIN + backoff(attempt) >= auth.valid_before:
            break
        yield Sleep(backoff(attempt))

    reason = "; ".join(reasons)
    if ambiguous or settled_elsewhere:
        yield Call(lambda: wallet.unknown(auth, reason))
        raise PaymentStateUnknownError(
            f"payment {auth.payment_id} was sent but its outcome is unknown ({reason}). It counts as spent "
            f"until reconciled; nothing will be paid again for this request. Check with "
            f"`imagine-agent receipts` and `imagine-agent reconcile`.",
            payment_id=auth.payment_id,
            nonce=auth.nonce,
        )
    yield Call(lambda: wallet.rejected(auth, reason))
    raise PaymentRejectedError(
        f"the server refused the payment ({reason}). The amount stays reserved until the authorization "
        f"expires (validBefore {auth.valid_before}), then is released.",
        reason=reason,
    )


def _rejection_reason(resp: httpx.Response) -> str:
    # An x402 v2 server reports a failed settlement in a receipt (PAYMENT-RESPONSE), with a body of {}
    # and no new PAYMENT-REQUIRED. A failure at settlement is not a pre-settlement verification failure:
    # the reason says "settlement failed", so paid_flow treats it as ambiguous (it may still land).
    receipt = _receipt(resp)
    failed = ""
    if receipt is not None and not receipt.success:
        failed = f"settlement failed: {receipt.error_reason or 'no reason given'}; "
    if resp.status_code == 402:
        try:
            required = parse_402(resp.headers, resp.content)
        except ProtocolError:
            return f"402 {failed}" + ("" if failed else "with an unreadable body")
        price = f" (price now {required.accepts[0].max_amount_required})" if required.accepts else ""
        return f"402 {failed}{required.error or 'payment rejected'}{price}"
    return f"HTTP {resp.status_code}: {failed}{_error_text(resp)}"


def _payment_info(auth: Any, receipt: SettlementResponse | None) -> PaymentInfo:
    req = auth.requirement
    tx = receipt.transaction if receipt is not None and receipt.success and receipt.transaction else None
    return PaymentInfo(
        payment_id=auth.payment_id,
        amount=req.amount,
        asset=req.asset,
        network=req.network,
        pay_to=req.pay_to,
        payer=auth.payment.payload.authorization.from_,
        transaction=tx,
    )


# ------------------------------------------------------------------------------------------- status


def parse_status(resp: httpx.Response) -> TaskStatus | None:
    """A status body, or None when the answer carries none (a proxy's 502, a truncated body)."""
    try:
        body = _json(resp.content)
    except ValueError:
        return None
    if not isinstance(body, dict) or "status" not in body:
        return None
    try:
        return TaskStatus.model_validate(body)
    except ValidationError:
        return None


def _retry_after(resp: httpx.Response, now: float) -> float | None:
    value = resp.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - now)


def status_flow(make: Callable[[], httpx.Request], task_id: str) -> Flow[TaskStatus]:
    """One status read, retried a few times over transient faults."""
    for attempt in range(1, UNPAID_ATTEMPTS + 1):
        resp = yield from _send_unpaid(make, f"status of {task_id}")
        status = parse_status(resp)
        if status is not None:
            return status
        if attempt == UNPAID_ATTEMPTS:
            raise ProtocolError(
                f"status of {task_id}: HTTP {resp.status_code} without a status body ({_error_text(resp)[:80]})"
            )
        yield Sleep(backoff(attempt))
    raise AssertionError("unreachable")


def wait_flow(
    make: Callable[[], httpx.Request],
    task_id: str,
    *,
    policy: PollPolicy,
    timeout: float | None,
    initial_delay: float,
    clock: Callable[[], float] = time.time,
) -> Flow[TaskStatus]:
    """Poll until completed (returned), failed or not found (raised), or timeout (raised).

    Progress handed to the caller never goes backwards; flapping and malformed answers are absorbed.
    """
    started = clock()
    deadline = None if timeout is None else started + timeout
    schedule = PollSchedule(policy, started)
    best_progress: float = 0.0
    seen_processing = False  # after it, a "queued" answer is the server flapping, not news
    last_key: tuple[str, float | None] | None = None
    transient = not_found = 0
    delay = initial_delay
    while True:
        if delay > 0:
            if deadline is not None and clock() + delay > deadline:
                delay = max(0.0, deadline - clock())
            yield Sleep(delay)
        status: TaskStatus | None = None
        resp: httpx.Response | None = None
        try:
            resp = yield make()
        except httpx.TransportError as exc:
            transient += 1
            if transient >= MAX_TRANSIENT_POLLS:
                raise connection_error(exc, f"waiting for {task_id}") from None
        else:
            status = parse_status(resp)
            if status is None:
                transient += 1
                if transient >= MAX_TRANSIENT_POLLS:
                    raise ProtocolError(f"waiting for {task_id}: {transient} answers without a status body")
        if status is not None:
            transient = 0
            if status.status == "not_found":
                not_found += 1
                if not_found >= MAX_NOT_FOUND_POLLS:
                    raise TaskNotFoundError(
                        f"task {task_id} is not known to the server", status_code=404, body=str(status.to_wire())
                    )
            else:
                not_found = 0
                if status.status == "queued" and seen_processing:
                    status = status.model_copy(update={"status": "processing", "progress": best_progress})
                seen_processing = seen_processing or status.status == "processing"
                if status.progress is not None or status.status == "processing":
                    progress = status.progress
                    if progress is None or not math.isfinite(progress) or progress < best_progress:  # keep the best
                        status = status.model_copy(update={"progress": best_progress})
                    best_progress = float(status.progress or 0)
                key = (status.status, status.progress)
                if key != last_key:
                    last_key = key
                    yield Update(status)
                if status.status == "completed":
                    if status.video_url is None:
                        raise ProtocolError(f"task {task_id} completed without a video URL")
                    return status
                if status.status == "failed":
                    raise GenerationFailedError(
                        f"generation {task_id} failed on the server: "
                        f"{status.to_wire().get('error', 'no reason given')}. The payment stays recorded.",
                        task_id=task_id,
                        body=status.to_wire(),
                    )
            schedule.observe(status, clock(), _retry_after(resp, clock()) if resp is not None else None)
            delay = schedule.next_delay(clock())
        else:
            delay = min(policy.cap, backoff(transient, base=policy.floor))
        if deadline is not None and clock() >= deadline:
            where = f"still {last_key[0]}" if last_key else "no status yet"
            raise ImagineTimeoutError(
                f"task {task_id}: {where} after {timeout:.0f} s. Nothing is lost: resume with "
                f"`imagine-agent wait {task_id}`"
            )


# ---------------------------------------------------------------------------------------- downloads

DOWNLOAD_ATTEMPTS = 3


class TransientDownloadError(DownloadError):
    """A 5xx from the file host (a proxy's 502, a restart): worth another try."""


def download_flow(fetch: Fetch) -> Flow[Path]:
    """Stream one file to disk, retrying connection faults and 5xx; a GET is free to repeat."""
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        try:
            path: Path = yield fetch
            return path
        except TransientDownloadError:
            if attempt == DOWNLOAD_ATTEMPTS:
                raise
        except httpx.TransportError as exc:
            if attempt == DOWNLOAD_ATTEMPTS:
                raise DownloadError(str(connection_error(exc, f"downloading {fetch.kind}"))) from None
        yield Sleep(backoff(attempt))
    raise AssertionError("unreachable")
