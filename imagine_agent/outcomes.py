"""What an answer to a *paid* request means for the money: I/O-free, version-agnostic (money-safety rule 2).

After a payment header left the process, the only answers that prove anything are a success with a task
(``paid``) and a 402 that names a *pre-settlement verification failure* the client can believe
(``rejected``). Everything else is ``unknown`` (counted as spent until reconciled), or ``retry`` when the
same header is worth re-sending (a transport fault, a 5xx, a success without a task id): the chain settles
a nonce once, so re-sending the very same header can never pay twice.

The vocabulary is x402's facilitator verify reasons (``x402`` v1 ``ErrorReasons`` and the v2
``@x402/evm`` exact-scheme reasons), mapped here:

=============================================================  ==========================================
reason (both spellings)                                         verdict
=============================================================  ==========================================
``invalid_exact_evm_payload_signature``, ``…_signature``        rejected
``invalid_payload``, ``invalid_payment_requirements``,          rejected
``invalid_x402_version``, ``invalid_scheme``,
``unsupported_scheme``, ``invalid_exact_evm_missing_eip712…``,
``…_token_name_mismatch``, ``…_token_version_mismatch``
``insufficient_funds``, ``invalid_exact_evm_insufficient_…``    rejected
``invalid_network``, ``invalid_exact_evm_network_mismatch``     rejected
``invalid_exact_evm_payload_authorization_valid_before``,       rejected only if our window has closed (or
``payment_expired``                                             is about to: validBefore < now + 6 s) by the
                                                                client's clock; else unknown
``invalid_exact_evm_payload_authorization_valid_after``         rejected only if validAfter > now; else unknown
``invalid_exact_evm_payload_authorization_value`` (+ v2 forms)  rejected only if the 402's offer now asks a
                                                                different amount than we signed; else unknown
``invalid_exact_evm_payload_recipient_mismatch`` (+ v2 forms)   rejected only if the offer names another payee
                                                                than we signed; else unknown
``nonce_already_used`` / ``…_nonce_already_used``                unknown: our nonce is random, so a used one
                                                                means an earlier attempt of ours settled
``unexpected_settle_error``, ``invalid_transaction_state``,     unknown: settlement was attempted and may
``settle_*``, ``unexpected_verify_error``, anything else,       still land; unreadable and unknown reasons
a non-string or missing reason, an unreadable 402               prove nothing
=============================================================  ==========================================

Any other status after payment (1xx, 204, 3xx — a signed header never follows a redirect — 4xx other
than 402), and a body that is over the size limit or cannot be decoded (bad ``Content-Encoding``, a
decompression bomb), is ``unknown``. A 5xx or a success without a task id is ``retry``.

A ``rejected`` payment is still held until its ``validBefore`` passes (the ledger releases it then); with
an RPC of the right chain (money-safety rule 9) the clock frees nothing: only the chain showing the nonce
unused after ``validBefore`` by block time does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "CREDIBLE_REJECTIONS",
    "SETTLE_MARGIN",
    "Answer",
    "Signed",
    "Verdict",
    "classify",
    "reason_of",
]

SETTLE_MARGIN = 6  # facilitators refuse an authorization with validBefore < now + 6 s

_PLAIN = frozenset(
    {
        "invalid_exact_evm_payload_signature",
        "invalid_exact_evm_signature",
        "invalid_payload",
        "invalid_payment_requirements",
        "invalid_x402_version",
        "invalid_scheme",
        "unsupported_scheme",
        "invalid_exact_evm_scheme",
        "invalid_exact_evm_missing_eip712_domain",
        "invalid_exact_evm_token_name_mismatch",
        "invalid_exact_evm_token_version_mismatch",
        "invalid_exact_evm_eip3009_not_supported",
        "insufficient_funds",
        "invalid_exact_evm_insufficient_balance",
        "invalid_network",
        "invalid_exact_evm_network_mismatch",
    }
)
_EXPIRED = frozenset({"invalid_exact_evm_payload_authorization_valid_before", "payment_expired"})
_NOT_YET = frozenset({"invalid_exact_evm_payload_authorization_valid_after"})
_AMOUNT = frozenset(
    {
        "invalid_exact_evm_payload_authorization_value",
        "invalid_exact_evm_payload_authorization_value_mismatch",
        "invalid_exact_evm_authorization_value",
    }
)
_RECIPIENT = frozenset({"invalid_exact_evm_payload_recipient_mismatch", "invalid_exact_evm_recipient_mismatch"})
CREDIBLE_REJECTIONS: frozenset[str] = _PLAIN | _EXPIRED | _NOT_YET | _AMOUNT | _RECIPIENT
MAX_REASON_CHARS = 120


@dataclass(frozen=True)
class Signed:
    """The values the client signed, which it can check a server's claim against."""

    value: int
    pay_to: str
    valid_after: int
    valid_before: int


@dataclass(frozen=True)
class Answer:
    """One answer to a paid request, reduced to what the classification needs.

    ``body`` is the decoded JSON (``None`` when there is none); ``body_error`` says why the body could not
    be read (over the size limit, bad encoding, not JSON) and wins over ``body``. ``task_id`` is the task a
    success named, if any. ``offers`` are ``(amount, payTo)`` of a 402's requirements as the protocol
    version parsed them (empty when unreadable).
    """

    status: int
    body: Any = None
    body_error: str | None = None
    task_id: str | None = None
    offers: tuple[tuple[int, str], ...] = ()


Kind = Literal["paid", "rejected", "unknown", "retry"]


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    reason: str


def reason_of(body: Any) -> object:
    """The x402 error reason of a 402 body as sent (any JSON type), or ``None``."""
    if not isinstance(body, Mapping):
        return None
    for key in ("error", "errorReason", "invalidReason"):
        if key in body:
            return body[key]
    return None


def _shown(reason: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in reason[:MAX_REASON_CHARS])


def classify(answer: Answer, signed: Signed, now: float) -> Verdict:
    """The money meaning of ``answer`` to a request that carried the payment ``signed`` (see the module)."""
    status = answer.status
    if answer.body_error is not None:
        return Verdict("unknown", f"HTTP {status} after payment, body unreadable ({answer.body_error})")
    if status in (200, 201, 202):
        if answer.task_id:
            return Verdict("paid", f"HTTP {status}")
        return Verdict("retry", f"HTTP {status} without a taskId")
    if status >= 500:
        return Verdict("retry", f"HTTP {status} after the payment was sent")
    if status != 402:
        what = "a redirect, which a payment never follows" if 300 <= status < 400 else "not a payment answer"
        return Verdict("unknown", f"HTTP {status} after the payment was sent ({what})")
    raw = reason_of(answer.body)
    if not isinstance(raw, str) or not raw.strip():
        return Verdict("unknown", "402 after payment without a readable error reason")
    reason = raw.strip()
    shown = _shown(reason)
    if reason not in CREDIBLE_REJECTIONS:
        return Verdict("unknown", f"402 {shown} (not a known pre-settlement failure: it may have settled)")
    if reason in _EXPIRED and signed.valid_before >= now + SETTLE_MARGIN:
        return Verdict("unknown", f"402 {shown}, but the authorization is valid until {signed.valid_before}")
    if reason in _NOT_YET and signed.valid_after <= now:
        return Verdict("unknown", f"402 {shown}, but the authorization is valid since {signed.valid_after}")
    if reason in _AMOUNT and not any(amount != signed.value for amount, _ in answer.offers):
        return Verdict("unknown", f"402 {shown}, but the server asks the {signed.value} we signed")
    if reason in _RECIPIENT and not any(pay_to.lower() != signed.pay_to.lower() for _, pay_to in answer.offers):
        return Verdict("unknown", f"402 {shown}, but the server names the payee we signed")
    price = f" (price now {answer.offers[0][0]})" if answer.offers else ""
    return Verdict("rejected", f"402 {shown}{price}")
