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
    PolicyViolationError,
    ProtocolError,
    TaskNotFoundError,
    WalletFrozenError,
)
from .history import WaitTiming
from .models import PaymentRequired, SettlementResponse, TaskCreated, TaskStatus
from .money import usdc_fields
from .origin import claims_sandbox
from .outcomes import SETTLE_MARGIN, Answer, Signed, Verdict, classify, reason_of
from .polling import PollPolicy, PollSchedule
from .x402 import parse_402, payment_id_of, receipt_from

__all__ = [
    "BODY_ERROR",
    "DEADLINE",
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

BODY_ERROR = "imagine.body_error"  # Response.extensions: why the driver could not read the body
DEADLINE = "imagine.deadline"  # Request.extensions: the caller's wall-clock deadline (the flow's clock)

UNPAID_ATTEMPTS = 3
PAID_ATTEMPTS = 4
MAX_TRANSIENT_POLLS = 30
MAX_NOT_FOUND_POLLS = 3


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
            **usdc_fields(self.amount),
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


def _send_unpaid(
    make: Callable[[], httpx.Request], what: str, lost: Callable[[httpx.TransportError], Flow[None]] | None = None
) -> Flow[httpx.Response]:
    """Send a request that carries no payment: retried on any network fault or 5xx, except that with ``lost``
    an answer lost after the request may have arrived goes to ``lost`` (which raises) instead of a re-send."""
    for attempt in range(1, UNPAID_ATTEMPTS + 1):
        try:
            resp: httpx.Response = yield make()
        except httpx.TransportError as exc:
            if lost is not None and not isinstance(exc, _NOT_DELIVERED):
                yield from lost(exc)
            if attempt == UNPAID_ATTEMPTS:
                raise connection_error(exc, what) from None
        else:
            error = resp.extensions.get(BODY_ERROR)
            if error is not None:
                raise ProtocolError(f"{what}: HTTP {resp.status_code} with an unreadable body ({error})")
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


# Faults that prove the request never reached the server: safe to send again whatever it would have done.
_NOT_DELIVERED = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def _send_create_unpaid(
    make: Callable[[], httpx.Request], wallet: Any, *, request_hash: str, resource_url: str, idempotent: bool
) -> Flow[httpx.Response]:
    """The first, unpaid create. A server may serve it from provider credits (202 without a 402), so an
    answer lost after the request may have arrived is not re-sent blindly: only with the server's
    idempotency key (``idempotent``: the ``seed`` its 402 documents), else recorded (0 USDC, unknown) and
    raised, as for a paid request. A fault before delivery and a 5xx answer are retried as before."""

    def lost(exc: httpx.TransportError) -> Flow[None]:
        reason = f"{type(exc).__name__} after the unpaid create was sent"
        if wallet is not None:
            yield Call(lambda: wallet.unpaid_unknown(request_hash, resource_url, reason))
        raise PaymentStateUnknownError(
            f"the answer to the create was lost ({reason}). A server serving it from provider credits "
            "(no 402) may have started the video and spent credits; it offers no idempotency key, so "
            "it was not sent again. Recorded in the audit as 0 USDC, unknown. Check the server's task "
            "list before running the request again."
        ) from None

    return (yield from _send_unpaid(make, "create", None if idempotent else lost))


def _payment_required(resp: httpx.Response, what: str) -> PaymentRequired:
    if resp.status_code == 402:
        try:
            return parse_402(resp.headers, resp.content)
        except ProtocolError as exc:  # unreadable, or a version we do not speak: a refusal, nothing signed
            raise PolicyViolationError(
                f"refused to pay: {what} answered a 402 that cannot be used ({exc}). Nothing was signed."
            ) from None
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
    new: bool = False,
    max_amount: int | None = None,
    on_402: Callable[[PaymentRequired], None] | None = None,
    idempotent: bool = False,
) -> Flow[Created]:
    """create → 402 → policy → reserve → sign → journal → retry with the payment → 202 taskId.

    A 202 with no 402 before it was paid from the provider's credits: 0 USDC, nothing reserved.
    The v2 ``payment-identifier`` is the signature's own (``x402.payment_id_for`` its nonce).
    """
    resp = yield from _send_create_unpaid(
        lambda: make(None), wallet, request_hash=request_hash, resource_url=resource_url, idempotent=idempotent
    )
    if resp.status_code in (200, 201, 202):
        created = _task_created(resp)
        if created is None:
            raise ProtocolError(f"create answered {resp.status_code} without a taskId")
        return Created(created.task_id, PaymentInfo.credits())
    required = _payment_required(resp, "create")
    if on_402 is not None:
        on_402(required)  # e.g. refuse a video model the 402 does not list, before anything is signed
    if wallet is None:
        raise PaymentRejectedError("this request costs money and no wallet is configured (set IMAGINE_PRIVATE_KEY)")
    auth = yield Call(
        lambda: wallet.authorize(
            required,
            resource_url=resource_url,
            request_hash=request_hash,
            description=description,
            new=new,
            max_amount=max_amount,
            sandbox=claims_sandbox(resp.headers, resource_url),
        )
    )
    return (yield from paid_flow(make, wallet, auth, clock=clock, fresh=True))


def paid_flow(
    make: Callable[[str | None], httpx.Request],
    wallet: Any,
    auth: Any,
    *,
    clock: Callable[[], float] = time.time,
    ambiguous: bool = False,
    fresh: bool = False,
) -> Flow[Created]:
    """Send one signed header until it lands; never sign again (money-safety rule 3).

    Each answer is classified by ``outcomes.classify``: only a credible, named pre-settlement failure is
    a rejection; anything else after the header went out is ``unknown``, or worth re-sending the *same*
    header while it is valid (the chain settles a nonce once). The kill switch is checked right before
    every send. When the header expires without an answer the payment is ``unknown`` and counts as spent.

    ``fresh``: this header was just signed and has never been sent. A 409 to the first send of a v2 payment
    with a ``payment-identifier`` (new with this signature) is the server refusing the id before any
    settlement, as the extension says: a clear rejection
    of this payment alone, held until it provably cannot settle (rule 2). A 409 to a re-send stays unknown.
    """
    reasons: list[str] = []
    attempt = 0
    sent = False  # by this flow: a journaled header from an earlier run is left as it is when frozen
    signed = _signed(auth)
    while True:
        attempt += 1
        frozen = yield Call(lambda: wallet.frozen_reason())
        if frozen is not None:
            if not sent:
                raise WalletFrozenError(
                    f"{frozen} Payment {auth.payment_id} is signed and journaled but was not sent now; it "
                    "stays reserved. After `imagine-agent budget --unfreeze`, running this request again "
                    "sends the same header; if it expires first, `imagine-agent reconcile` settles it (unknown, or "
                    "released when an RPC shows its nonce unused)."
                )
            ambiguous = True
            reasons.append("re-sending stopped: the wallet was frozen")
            break
        sent = True
        try:
            resp: httpx.Response = yield make(auth.header)
        except httpx.TransportError as exc:
            verdict = Verdict("retry", f"{type(exc).__name__} after the payment was sent")
        else:
            created = _task_created(resp)
            verdict = classify(_answer(resp, created), signed, clock())
            if verdict.kind == "paid" and created is not None:
                receipt = _receipt(resp)
                task_id = created.task_id
                yield Call(lambda: wallet.settled(auth, task_id=task_id, receipt=receipt))  # noqa: B023
                return Created(task_id, _payment_info(auth, receipt))
            if (pending_tx := _settlement_pending(resp)) is not None:
                reason = f"settlement_pending: transaction {pending_tx} not confirmed yet"
                yield Call(lambda: wallet.pending(auth, transaction=pending_tx, reason=reason))  # noqa: B023
                raise PaymentStateUnknownError(
                    f"payment {auth.payment_id} went on chain in transaction {pending_tx}, not confirmed yet. "
                    "It counts as spent and is journaled as pending; `imagine-agent reconcile` settles it by "
                    "that transaction. Nothing will be paid again for this request.",
                    payment_id=auth.payment_id,
                    nonce=auth.nonce,
                )
            verdict = _v2_verdict(verdict, resp, auth)
            if (
                resp.status_code == 409
                and fresh
                and attempt == 1
                and resp.extensions.get(BODY_ERROR) is None
                and (payment_id := _payment_identifier(auth)) is not None
            ):
                conflict = f"HTTP 409 to the first send of payment-identifier {payment_id}: {_error_text(resp)[:200]}"
                reasons.append(conflict)
                peer = yield Call(lambda: wallet.rejected(auth, conflict))  # noqa: B023
                if peer is not None and getattr(peer, "task_id", None):  # a peer re-sending it got it paid
                    return Created(peer.task_id, _payment_info(auth, None, transaction=peer.transaction))
                raise PaymentRejectedError(
                    f"the server refused payment {auth.payment_id} before settling it ({conflict}). Its "
                    "payment-identifier is new with this signature, so the server is wrong or keeps ids of "
                    "another client; nothing else is affected. The amount stays reserved until the authorization "
                    f"provably cannot settle (validBefore {auth.valid_before}, or the chain with an RPC), then "
                    "is released.",
                    reason=conflict,
                )
        reasons.append(verdict.reason)
        if verdict.kind != "rejected":
            ambiguous = True
        if verdict.kind == "rejected" and verdict.reason.startswith("HTTP 400"):
            break  # x402 v2: a malformed payment is refused before settlement; the same bytes stay malformed
        if verdict.kind != "retry" and attempt >= 2:
            break  # one re-send of the same header: a server that settled, then misanswered, answers it
        if attempt >= PAID_ATTEMPTS or clock() + SETTLE_MARGIN + backoff(attempt) >= auth.valid_before:
            break
        yield Sleep(backoff(attempt))

    reason = "; ".join(reasons)
    peer = yield Call(lambda: wallet.unknown(auth, reason) if ambiguous else wallet.rejected(auth, reason))
    if peer is not None and getattr(peer, "task_id", None):  # a peer sending the same header got it paid
        return Created(peer.task_id, _payment_info(auth, None, transaction=peer.transaction))
    if ambiguous:
        raise PaymentStateUnknownError(
            f"payment {auth.payment_id} was sent but its outcome is unknown ({reason}). It counts as spent "
            f"until reconciled; nothing will be paid again for this request. Check with "
            f"`imagine-agent receipts` and `imagine-agent reconcile`.",
            payment_id=auth.payment_id,
            nonce=auth.nonce,
        )
    raise PaymentRejectedError(
        f"the server refused the payment ({reason}). The amount stays reserved until the authorization "
        f"expires (validBefore {auth.valid_before}), then is released.",
        reason=reason,
    )


def _payment_identifier(auth: Any) -> str | None:
    """The x402 v2 ``payment-identifier`` a payment carries (None for v1, or when the server declared none)."""
    return payment_id_of(auth.payment) if int(getattr(auth.payment, "x402_version", 1)) == 2 else None


def _signed(auth: Any) -> Signed:
    a = auth.payment.payload.authorization
    return Signed(value=int(a.value), pay_to=a.to, valid_after=int(a.valid_after), valid_before=int(a.valid_before))


def _v2_verdict(verdict: Verdict, resp: httpx.Response, auth: Any) -> Verdict:
    """What x402 v2 adds to the classification: a 400 to a v2 payment, and a failed ``PAYMENT-RESPONSE``.

    A v2 server answers a malformed payment 400 before it attempts any settlement: rejected. A failed
    settlement receipt (``PAYMENT-RESPONSE`` with ``success: false``, body ``{}``) means settlement was
    attempted and may still land: never a rejection, whatever reason it names.
    """
    if (
        resp.status_code == 400
        and int(getattr(auth.payment, "x402_version", 1)) == 2
        and resp.extensions.get(BODY_ERROR) is None
    ):
        return Verdict("rejected", f"HTTP 400, malformed payment: {_error_text(resp)}")
    receipt = _receipt(resp)
    if receipt is not None and not receipt.success and verdict.kind in ("rejected", "unknown"):
        why = receipt.error_reason or "no reason given"
        return Verdict("unknown", f"{resp.status_code} settlement failed: {why} (it may still land)")
    return verdict


def _answer(resp: httpx.Response, created: TaskCreated | None) -> Answer:
    """Reduce a response to what ``classify`` needs; the body is parsed here, never trusted.

    x402 v2 states the reason in headers: a failed ``PAYMENT-RESPONSE`` receipt's ``errorReason``, or the
    new ``PAYMENT-REQUIRED``'s ``error``; a body without a reason gets it there, where ``classify`` reads it.
    """
    body_error = resp.extensions.get(BODY_ERROR)
    body: Any = None
    offers: tuple[tuple[int, str], ...] = ()
    if body_error is None and resp.content:
        try:
            body = _json(resp.content)
        except ValueError:
            body_error = "not JSON" if resp.status_code == 402 else None
    if resp.status_code == 402 and body_error is None:
        required: PaymentRequired | None
        try:
            required = parse_402(resp.headers, resp.content)
        except ProtocolError:
            required = None
        else:
            offers = tuple((r.amount, r.pay_to) for r in required.accepts)
        if reason_of(body) is None:
            receipt = _receipt(resp)
            header_reason = (receipt.error_reason if receipt is not None and not receipt.success else None) or (
                required.error if required is not None else None
            )
            if header_reason:
                body = {**(body if isinstance(body, dict) else {}), "error": header_reason}
    return Answer(
        status=resp.status_code,
        body=body,
        body_error=str(body_error) if body_error is not None else None,
        task_id=created.task_id if created is not None else None,
        offers=offers,
    )


def _payment_info(auth: Any, receipt: SettlementResponse | None, *, transaction: str | None = None) -> PaymentInfo:
    req = auth.requirement
    tx = receipt.transaction if receipt is not None and receipt.success and receipt.transaction else transaction
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
    aims: tuple[float, ...] = (),
    timing: WaitTiming | None = None,
) -> Flow[TaskStatus]:
    """Poll until completed (returned), failed or not found (raised), or timeout (raised).

    Progress handed to the caller never goes backwards; flapping and malformed answers are absorbed.
    ``aims``: history's aimed polls (seconds after the start); ``timing`` is filled with when the job was
    last seen unfinished and first seen completed, the bracket the ledger keeps as history.
    """
    started = clock()
    deadline = None if timeout is None else started + timeout
    schedule = PollSchedule(policy, started, aims=aims, fresh=initial_delay > 0)
    timing = timing if timing is not None else WaitTiming()
    best_progress: float = 0.0
    seen_processing = False  # after it, a "queued" answer is the server flapping, not news
    last_key: tuple[str, float | None] | None = None
    transient = not_found = 0
    delay = schedule.first_delay(initial_delay)
    while True:
        if delay > 0:
            if deadline is not None and clock() + delay > deadline:
                delay = max(0.0, deadline - clock())
            yield Sleep(delay)
        status: TaskStatus | None = None
        resp: httpx.Response | None = None
        request = make()
        if deadline is not None:
            request.extensions[DEADLINE] = deadline  # the read itself must not outlive the wait
        try:
            resp = yield request
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
                    timing.completed = clock()
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
            if status.status != "not_found":
                timing.last_unfinished = clock()
            schedule.observe(status, clock(), _retry_after(resp, clock()) if resp is not None else None)
            delay = schedule.next_delay(clock())
        else:
            delay = min(policy.cap, backoff(transient, base=policy.floor))
            if resp is not None and resp.status_code in (429, 503):  # overloaded: wait as long as it asks
                asked = _retry_after(resp, clock())
                if asked is not None:
                    delay = max(delay, min(asked, policy.max_retry_after))
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
