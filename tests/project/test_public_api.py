"""The public API is small and pinned: a change to __all__ is a deliberate act."""

from __future__ import annotations

import importlib

import imagine_agent

PINNED = {
    "imagine_agent": [
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
    ],
    "imagine_agent.errors": [
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
    ],
    "imagine_agent.client": ["AsyncImagineClient", "AsyncJob", "Downloads", "ImagineClient", "Job", "Quote"],
    "imagine_agent.jobs": ["AsyncJob", "AsyncJobClient", "Downloads", "Job", "JobClient"],
    "imagine_agent.inputs": [
        "IMAGE_MIME_TYPES",
        "MAX_IMAGE_BYTES",
        "ImageFile",
        "check_image_host",
        "is_private_host",
        "sniff_image_type",
        "validate_task_id",
    ],
    "imagine_agent.wire": ["WireModel"],
    "imagine_agent.mcp": ["create_server", "main", "serve"],
    "imagine_agent.mcp_server": ["create_server", "main", "serve"],
    "imagine_agent.mcp.tools": ["INSTRUCTIONS", "READ_ONLY", "create_server"],
    "imagine_agent.mcp.elicitation": ["HumanAsk", "no_human_to_ask"],
    "imagine_agent.mcp.lazy": ["LazyService"],
    "imagine_agent.mcp.serve": ["check_settings", "main", "serve"],
    "imagine_agent.sandbox.app": ["create_app"],
    "imagine_agent.sandbox.api": ["api_routes"],
    "imagine_agent.sandbox.facilitator": ["facilitator_routes"],
    "imagine_agent.sandbox.admin": ["admin_routes"],
    "imagine_agent.sandbox.parsing": ["parse_create"],
    "imagine_agent.x402.types": [
        "Address",
        "ExactAuthorization",
        "ExactEvmPayload",
        "OfferV2",
        "PaymentPayload",
        "PaymentPayloadV2",
        "PaymentRequired",
        "PaymentRequiredV2",
        "PaymentRequirements",
        "PaymentRequirementsV2",
        "ResourceInfo",
        "SettlementResponse",
        "UintString",
        "VerifyResponse",
    ],
    "imagine_agent.wallet": [
        "ApprovalRequest",
        "Approver",
        "Authorization",
        "PaymentPolicy",
        "PersonApproval",
        "Wallet",
        "approval_context",
        "collect_warnings",
        "person_approved",
    ],
    "imagine_agent.decisions": [
        "Asker",
        "CoinDecision",
        "PersonDecision",
        "decide_coin",
        "person_needed",
        "price_bound",
    ],
    "imagine_agent.service": [
        "BudgetReport",
        "GenerationOutcome",
        "ImagineService",
        "QuoteResult",
        "ReadOnlySigner",
        "check_output_dir",
        "keystore_path",
        "load_signer",
        "public_address",
        "sandbox_ledger_location",
    ],
    # the packages' modules (issue 21's layout); the names above stay importable from their old paths
    "imagine_agent.wallet.policy": ["PaymentPolicy"],
    "imagine_agent.wallet.approval": [
        "DEFAULT_APPROVAL_TTL",
        "ApprovalRequest",
        "Approver",
        "PersonApproval",
        "QueueApprover",
        "approval_context",
        "person_approved",
    ],
    "imagine_agent.wallet.wallet": ["Authorization", "Wallet", "collect_warnings"],
    "imagine_agent.wallet.keys": [
        "ReadOnlySigner",
        "create_keystore",
        "keystore_path",
        "load_signer",
        "public_address",
    ],
    "imagine_agent.service.service": [
        "GenerationOutcome",
        "ImagineService",
        "ProgressCallback",
        "QuoteResult",
        "check_output_dir",
    ],
    "imagine_agent.service.build": [
        "SIGNING_GRACE",
        "Parts",
        "ReadOnlySigner",
        "assemble",
        "claims_sandbox_server",
        "create_keystore",
        "keystore_path",
        "load_signer",
        "policy_from",
        "public_address",
        "sandbox_ledger_location",
    ],
    "imagine_agent.service.decisions": [
        "Asker",
        "CoinDecision",
        "PersonDecision",
        "decide_coin",
        "person_needed",
        "price_bound",
    ],
    "imagine_agent.service.books": [
        "BOOK_LABELS",
        "PAYMENT_STATES",
        "BookSummary",
        "Booked",
        "Books",
        "BudgetReport",
        "follows_sandbox",
        "reconcile_ledger",
    ],
    "imagine_agent.service.reconcile": ["SIGNING_GRACE", "reconcile_ledger"],
    "imagine_agent.service.results": [
        "approval_json",
        "book_summary_json",
        "budget_json",
        "coin_line",
        "delivery_facts",
        "receipt_json",
    ],
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
