"""imagine-agent: let AI agents buy videos from the Imagine API, paying with x402 under a hard budget.

Names are imported lazily so that ``import imagine_agent`` (and the CLI's ``--help``) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "AsyncImagineClient": "client",
    "AsyncJob": "client",
    "ImagineClient": "client",
    "Job": "client",
    "Quote": "client",
    "Settings": "config",
    "CreateRequest": "models",
    "TaskStatus": "models",
    "TemplateData": "models",
    "PollPolicy": "polling",
    "ImagineService": "service",
    "GenerationOutcome": "service",
    "PaymentPolicy": "wallet",
    "Wallet": "wallet",
    "PrivateKeySigner": "x402",
    "Signer": "x402",
    "Caps": "ledger",
    "open_ledger": "ledger",
    "ImagineError": "errors",
    "InvalidRequestError": "errors",
    "PaymentError": "errors",
    "BudgetExceededError": "errors",
    "PolicyViolationError": "errors",
    "PaymentRejectedError": "errors",
    "PaymentStateUnknownError": "errors",
    "GenerationFailedError": "errors",
}

__all__ = [
    "AsyncImagineClient",
    "AsyncJob",
    "BudgetExceededError",
    "Caps",
    "CreateRequest",
    "GenerationFailedError",
    "GenerationOutcome",
    "ImagineClient",
    "ImagineError",
    "ImagineService",
    "InvalidRequestError",
    "Job",
    "PaymentError",
    "PaymentPolicy",
    "PaymentRejectedError",
    "PaymentStateUnknownError",
    "PolicyViolationError",
    "PollPolicy",
    "PrivateKeySigner",
    "Quote",
    "Settings",
    "Signer",
    "TaskStatus",
    "TemplateData",
    "Wallet",
    "__version__",
    "open_ledger",
]

if TYPE_CHECKING:
    from .client import AsyncImagineClient, AsyncJob, ImagineClient, Job, Quote
    from .config import Settings
    from .errors import (
        BudgetExceededError,
        GenerationFailedError,
        ImagineError,
        InvalidRequestError,
        PaymentError,
        PaymentRejectedError,
        PaymentStateUnknownError,
        PolicyViolationError,
    )
    from .ledger import Caps, open_ledger
    from .models import CreateRequest, TaskStatus, TemplateData
    from .polling import PollPolicy
    from .service import GenerationOutcome, ImagineService
    from .wallet import PaymentPolicy, Wallet
    from .x402 import PrivateKeySigner, Signer


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'imagine_agent' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
