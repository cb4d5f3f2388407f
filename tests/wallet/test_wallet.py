"""Wallet rules: approval threshold, kill switch across processes, caps from the operator only."""

from __future__ import annotations

import subprocess
import sys

import pytest

from imagine_agent.errors import ApprovalDeniedError, BudgetExceededError, WalletFrozenError
from imagine_agent.ledger import PaymentState
from imagine_agent.x402 import parse_payment_required

from ..spec import SPEC_402

URL = "https://eliza.getimagine.club/generation/create"


def test_payment_over_threshold_needs_approval(make_wallet, counting_signer, ledger) -> None:
    asked = []
    wallet = make_wallet(approval_threshold=500_000, approver=lambda req: asked.append(req) or False)
    with pytest.raises(ApprovalDeniedError, match="not approved"):
        wallet.authorize(parse_payment_required(SPEC_402), resource_url=URL, request_hash="h1")
    assert len(asked) == 1 and asked[0].amount == 1_000_000 and "1.000000 USDC" in str(asked[0])
    assert counting_signer.signed == 0 and ledger.payments() == []
    approving = make_wallet(approval_threshold=500_000, approver=lambda req: True)
    approving.authorize(parse_payment_required(SPEC_402), resource_url=URL, request_hash="h1")
    assert counting_signer.signed == 1


def test_no_approver_means_no(make_wallet, counting_signer) -> None:
    wallet = make_wallet(approval_threshold=0)
    with pytest.raises(ApprovalDeniedError):
        wallet.authorize(parse_payment_required(SPEC_402), resource_url=URL, request_hash="h")
    assert counting_signer.signed == 0


def test_kill_switch_from_another_process_stops_payments(make_wallet, counting_signer, ledger, tmp_path) -> None:
    wallet = make_wallet()
    wallet.authorize(parse_payment_required(SPEC_402), resource_url=URL, request_hash="a")
    db = tmp_path / "ledger.sqlite3"
    code = f"from imagine_agent.ledger import open_ledger; l = open_ledger({str(db)!r}); l.set_frozen(True); l.close()"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    with pytest.raises(WalletFrozenError, match="--unfreeze"):
        wallet.authorize(parse_payment_required(SPEC_402), resource_url=URL, request_hash="b")
    assert counting_signer.signed == 1
    ledger.set_frozen(False)
    wallet.authorize(parse_payment_required(SPEC_402), resource_url=URL, request_hash="b")
    assert counting_signer.signed == 2


def test_daily_cap_counts_every_unreleased_payment(make_wallet, counting_signer, ledger) -> None:
    wallet = make_wallet(daily=2_500_000)
    required = parse_payment_required(SPEC_402)
    first = wallet.authorize(required, resource_url=URL, request_hash="1")
    wallet.unknown(first, "lost answer")
    second = wallet.authorize(required, resource_url=URL, request_hash="2")
    wallet.settled(second, task_id="t2", receipt=None)
    with pytest.raises(BudgetExceededError, match="daily cap"):
        wallet.authorize(required, resource_url=URL, request_hash="3")
    assert counting_signer.signed == 2
    assert {p.state for p in ledger.payments()} == {PaymentState.UNKNOWN, PaymentState.PAID}


def test_signing_failure_releases_the_reservation(make_wallet, ledger) -> None:
    wallet = make_wallet()

    class Broken:
        address = wallet.address

        def sign_typed_data(self, typed_data):
            raise RuntimeError("HSM unplugged")

    wallet.signer = Broken()
    with pytest.raises(RuntimeError):
        wallet.authorize(parse_payment_required(SPEC_402), resource_url=URL, request_hash="x")
    (record,) = ledger.payments()
    assert record.state == PaymentState.RELEASED and record.header is None


# What an agent (an LLM) can set, reviewed: none of it is a cap, a threshold, a payee, a network or a policy.
# A new parameter, whatever its name, fails these tests until it is reviewed and added here (rule 5).
VIDEO_ARGS = {"prompt", "duration", "image", "remix_of", "auto_clank", "auto_enhance", "video_model"}
TOOL_PARAMETERS = {
    "quote_video": VIDEO_ARGS,
    "generate_video": VIDEO_ARGS,
    "wait_for_video": {"task_id", "download"},
    "video_status": {"task_id"},
    "budget_status": set(),
}
INJECTED = {"runtime"}  # LangChain's ToolRuntime: filled by the framework, never by the model
SERVICE_PARAMETERS = {
    "generate": [
        "self",
        "prompt",
        "wait",
        "download",
        "output_dir",
        "on_progress",
        "timeout",
        "attach",
        "max_amount",
        "**options",
    ],
    "quote": ["self", "prompt", "all_models", "**options"],
    "agenerate": ["self", "prompt", "on_progress", "**options"],
    "aquote": ["self", "prompt", "**options"],
    "build_request": ["self", "prompt", "duration", "image", "auto_clank", "auto_enhance", "remix", "video_model"],
}


def test_the_langchain_tools_take_only_reviewed_parameters() -> None:
    """An allow-list, not a deny-list of cap names: a new parameter with any name fails until reviewed."""
    from imagine_agent.tools import imagine_tools

    tools = imagine_tools()
    model_sees = {t.name: set(t.tool_call_schema.model_json_schema().get("properties", {})) for t in tools}
    assert model_sees == TOOL_PARAMETERS
    assert {t.name: set(t.args) for t in tools} == TOOL_PARAMETERS
    for tool in tools:
        schema = tool.args_schema.model_json_schema() if isinstance(tool.args_schema, type) else tool.args_schema
        assert set(schema.get("properties", {})) - TOOL_PARAMETERS[tool.name] <= INJECTED, tool.name


def test_caps_cannot_come_from_tool_arguments() -> None:
    """The service API the tools call takes reviewed parameters only (``**options`` are the request's fields,
    checked by ``build_request``): only Settings sets a cap."""
    import inspect

    from imagine_agent.service import ImagineService

    def shown(p: inspect.Parameter) -> str:
        return f"**{p.name}" if p.kind is inspect.Parameter.VAR_KEYWORD else p.name

    found = {
        name: [shown(p) for p in inspect.signature(getattr(ImagineService, name)).parameters.values()]
        for name in SERVICE_PARAMETERS
    }
    assert found == SERVICE_PARAMETERS
