"""One exception tree for everything imagine-agent raises.

Catch ``ImagineError`` to catch them all. The tree::

    ImagineError
    ├── InvalidRequestError          bad input, rejected before anything is sent or signed  (exit 2)
    ├── ConfigurationError           settings that cannot work (unknown network, bad key)     (exit 2)
    ├── ImagineConnectionError       the server could not be reached / the connection dropped
    │   └── ImagineTimeoutError      no answer in time
    ├── ImagineStatusError           an HTTP status the protocol does not expect
    │   └── TaskNotFoundError        404 {"status": "not_found"}                              (exit 5)
    ├── ProtocolError                a body that does not match the wire format
    ├── DownloadError                a result file that could not be fetched or was too large
    ├── GenerationFailedError        the task ended ``failed``                                (exit 1)
    └── PaymentError                 anything about money
        ├── PolicyViolationError     the 402 asks for something the policy forbids; nothing signed (exit 3)
        ├── BudgetExceededError      a cap would be exceeded; nothing signed                   (exit 3)
        ├── ApprovalDeniedError      a human (or callback) said no; nothing signed             (exit 3)
        │   ├── AwaitingApprovalError  queued for the operator (``approvals approve ID``)         (exit 3)
        │   └── PriceChangedError    the price rose above the one quoted; nothing signed        (exit 3)
        ├── WalletFrozenError        the kill switch is on; nothing signed                     (exit 3)
        ├── PaymentInFlightError     this exact request already has an open payment; nothing signed
        ├── PaymentAbortedError      the reservation was released while signing; nothing sent
        ├── PaymentRejectedError     the server refused a payment we sent
        └── PaymentStateUnknownError a payment went out and we cannot tell if it settled     (exit 4)

Every message says what happened and what to do next. No message ever contains a key.
Every refusal (nothing signed) carries a stable machine-readable ``code`` from ``REFUSAL_CODES``; other
errors carry a code naming their kind (``invalid_request``, ``payment_unknown``…), so scripts never parse text.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "REFUSAL_CODES",
    "ApprovalDeniedError",
    "AwaitingApprovalError",
    "BudgetExceededError",
    "ConfigurationError",
    "DownloadError",
    "GenerationFailedError",
    "ImagineConnectionError",
    "ImagineError",
    "ImagineStatusError",
    "ImagineTimeoutError",
    "InvalidRequestError",
    "PaymentAbortedError",
    "PaymentError",
    "PaymentInFlightError",
    "PaymentRejectedError",
    "PaymentStateUnknownError",
    "PolicyViolationError",
    "PriceChangedError",
    "ProtocolError",
    "TaskNotFoundError",
    "WalletFrozenError",
    "exit_code_for",
]


# The stable refusal codes (money-safety rule 1): scripts, tools and the console match on these, never on text.
REFUSAL_CODES: dict[str, str] = {
    "per_call_cap": "the price is over the per-call cap (IMAGINE_MAX_PER_CALL)",
    "daily_cap": "the rolling 24 h cap would be exceeded (IMAGINE_DAILY_CAP)",
    "total_cap": "the total cap would be exceeded (IMAGINE_TOTAL_CAP)",
    "session_cap": "this session's cap would be exceeded (IMAGINE_SESSION_CAP)",
    "rate_limit": "too many payments in the last minute (IMAGINE_RATE_PER_MINUTE)",
    "frozen": "the kill switch is on (imagine-agent budget --unfreeze)",
    "scheme_not_allowed": "the 402 asks for a scheme other than exact",
    "network_not_allowed": "the network is not in the allowlist (IMAGINE_NETWORKS)",
    "asset_not_allowed": "the asset is not USDC on that network",
    "payee_not_allowed": "the payee is not in the payTo allowlist (IMAGINE_PAY_TO)",
    "ambiguous_price": "the 402 names two different prices (amount and maxAmountRequired) for one requirement",
    "domain_not_allowed": "the signing domain is not USDC's",
    "validity_too_long": "the authorization would stay valid longer than IMAGINE_MAX_VALIDITY_SECONDS",
    "zero_amount": "the server asks for 0 USDC",
    "insufficient_balance": "the paying wallet holds less USDC than the price",
    "awaiting_approval": "over the approval threshold: queued for the operator (imagine-agent approvals)",
    "approval_denied": "over the approval threshold and not approved (or denied by the operator)",
    "approval_expired": "the operator's approval expired or was already used",
    "price_changed": "the price rose above the one quoted in this run",
    "payment_in_flight": "this exact request already has a payment that may settle (pass --new to pay again)",
    "policy": "the payment breaks the operator's policy",
    "budget": "a budget cap would be exceeded",
}


class ImagineError(Exception):
    """Base of every error raised by imagine-agent."""

    code: str = "error"  # overridden per class; refusals set the precise one from REFUSAL_CODES

    def __init__(self, *args: object, code: str | None = None) -> None:
        super().__init__(*args)
        if code is not None:
            self.code = code


class InvalidRequestError(ImagineError, ValueError):
    """The request is invalid; it was rejected before anything was sent or signed."""

    code = "invalid_request"


class ConfigurationError(ImagineError):
    """The configuration cannot work (for example an unknown network or a malformed key)."""

    code = "configuration"


class ImagineConnectionError(ImagineError):
    """The server could not be reached, or the connection dropped mid-request."""

    code = "connection"


class ImagineTimeoutError(ImagineConnectionError):
    """The server did not answer in time."""

    code = "timeout"


class ImagineStatusError(ImagineError):
    """The server answered with an HTTP status the protocol does not expect here."""

    code = "http_status"

    def __init__(self, message: str, *, status_code: int, body: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body[:2000]


class TaskNotFoundError(ImagineStatusError):
    """The server does not know this task id."""

    code = "task_not_found"


class ProtocolError(ImagineError):
    """The server sent a body that does not match the wire format."""

    code = "protocol"


class DownloadError(ImagineError):
    """A result file could not be downloaded (unreachable, wrong type, or over the size limit)."""

    code = "download"


class GenerationFailedError(ImagineError):
    """The task ended with status ``failed``. The payment for it, if any, stays recorded."""

    code = "generation_failed"

    def __init__(self, message: str, *, task_id: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.body = body or {}


class PaymentError(ImagineError):
    """Base of every money-related error."""

    code = "payment"


class PolicyViolationError(PaymentError):
    """The payment requirement breaks the operator's policy; nothing was signed."""

    code = "policy"


class BudgetExceededError(PaymentError):
    """Paying would exceed a cap; nothing was signed."""

    code = "budget"


class ApprovalDeniedError(PaymentError):
    """The payment needed approval and did not get it; nothing was signed."""

    code = "approval_denied"


class AwaitingApprovalError(ApprovalDeniedError):
    """Over the approval threshold with no human at hand: queued for the operator; nothing reserved or signed.

    ``approval_id`` is the queue entry (``imagine-agent approvals approve ID``); once approved, the same
    request goes through at that price or less.
    """

    code = "awaiting_approval"

    def __init__(self, message: str, *, approval_id: str) -> None:
        super().__init__(message)
        self.approval_id = approval_id


class PriceChangedError(ApprovalDeniedError):
    """The price at payment time is above the one quoted to a person or model in this run; nothing signed."""

    code = "price_changed"


class WalletFrozenError(PaymentError):
    """The kill switch is on: no process sharing this ledger may pay."""

    code = "frozen"


class PaymentInFlightError(PaymentError):
    """A payment for this exact request is reserved, sent, unknown or pending: a second one is not signed."""

    code = "payment_in_flight"

    def __init__(self, message: str, *, payment_id: str, state: str) -> None:
        super().__init__(message)
        self.payment_id = payment_id
        self.state = state


class PaymentAbortedError(PaymentError):
    """The reservation stopped being ours before its header was journaled; the header was never sent."""

    code = "payment_aborted"


class PaymentRejectedError(PaymentError):
    """The server refused a payment that was sent. The reservation is kept until it provably expired."""

    code = "payment_rejected"

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class PaymentStateUnknownError(PaymentError):
    """A signed payment went out and its outcome is unknown; it counts as spent until reconciled."""

    code = "payment_unknown"

    def __init__(self, message: str, *, payment_id: str | None = None, nonce: str | None = None) -> None:
        super().__init__(message)
        self.payment_id = payment_id
        self.nonce = nonce


def exit_code_for(error: BaseException, *, payment_sent: bool = True) -> int:
    """The CLI exit code contract (docs/cli.md):

    0 done · 1 generation failed · 2 bad input or configuration · 3 refused by policy or budget (nothing
    signed) · 4 a payment was sent and its outcome is unknown, or a network failure after it was sent ·
    5 the task id is unknown to the server · 6 the server failed or could not be reached and no payment
    was sent (safe to retry) · 7 an internal error (a bug; ``imagine-agent receipts`` shows any payment).

    ``payment_sent=False`` only when the caller knows no header went out in this run: a network failure
    is then 6, not 4. The default is the cautious reading.
    """
    if isinstance(error, GenerationFailedError):
        return 1
    if isinstance(error, InvalidRequestError | ConfigurationError):
        return 2
    if isinstance(error, PolicyViolationError | BudgetExceededError | ApprovalDeniedError | WalletFrozenError):
        return 3
    if isinstance(error, PaymentStateUnknownError | PaymentRejectedError):
        return 4
    if isinstance(error, TaskNotFoundError):
        return 5
    if isinstance(error, ImagineError):
        return 4 if payment_sent else 6
    return 7
