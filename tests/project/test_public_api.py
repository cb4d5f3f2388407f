"""The public API is small and pinned: a change to __all__ is a deliberate act."""

from __future__ import annotations

import importlib

import imagine_agent

PINNED = {
    "imagine_agent": [
        "AsyncImagineClient", "AsyncJob", "BudgetExceededError", "Caps", "CreateRequest", "GenerationFailedError",
        "GenerationOutcome", "ImagineClient", "ImagineError", "ImagineService", "InvalidRequestError", "Job",
        "PaymentError", "PaymentPolicy", "PaymentRejectedError", "PaymentStateUnknownError", "PolicyViolationError",
        "PollPolicy", "PrivateKeySigner", "Quote", "Settings", "Signer", "TaskStatus", "TemplateData", "Wallet",
        "__version__", "open_ledger",
    ],
    "imagine_agent.errors": [
        "REFUSAL_CODES", "ApprovalDeniedError", "AwaitingApprovalError", "BudgetExceededError", "ConfigurationError", "DownloadError", "GenerationFailedError",
        "ImagineConnectionError", "ImagineError", "ImagineStatusError", "ImagineTimeoutError", "InvalidRequestError",
        "PaymentAbortedError", "PaymentError", "PaymentInFlightError", "PaymentRejectedError",
        "PaymentStateUnknownError", "PolicyViolationError", "PriceChangedError", "ProtocolError",
        "TaskNotFoundError", "WalletFrozenError", "exit_code_for",
    ],
    "imagine_agent.client": ["AsyncImagineClient", "AsyncJob", "Downloads", "ImagineClient", "Job", "Quote"],
    "imagine_agent.wallet": ["ApprovalRequest", "Approver", "Authorization", "PaymentPolicy", "PersonApproval",
                             "Wallet", "approval_context", "collect_warnings", "person_approved"],
    "imagine_agent.decisions": ["Asker", "CoinDecision", "PersonDecision", "decide_coin", "person_needed",
                                "price_bound"],
    "imagine_agent.service": ["BudgetReport", "GenerationOutcome", "ImagineService", "QuoteResult", "ReadOnlySigner",
                              "check_output_dir", "keystore_path", "load_signer", "public_address",
                              "sandbox_ledger_location"],
}


def test_all_is_pinned() -> None:
    for module_name, names in PINNED.items():
        module = importlib.import_module(module_name)
        assert sorted(module.__all__) == sorted(names), module_name
        for name in names:
            assert getattr(module, name) is not None


def test_every_error_is_an_imagine_error() -> None:
    errors = importlib.import_module("imagine_agent.errors")
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type):
            assert issubclass(obj, errors.ImagineError)


def test_lazy_names_resolve() -> None:
    assert imagine_agent.ImagineService.__name__ == "ImagineService"
    assert "ImagineClient" in dir(imagine_agent)
