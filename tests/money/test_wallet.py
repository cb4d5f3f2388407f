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


def test_payment_over_threshold_needs_approval(make_wallet, signer, ledger) -> None:
    asked = []
    wallet = make_wallet(approval_threshold=500_000, approver=lambda req: asked.append(req) or False)
    with pytest.raises(ApprovalDeniedError, match="not approved"):
        wallet.authorize(parse_payment_required(SPEC_402), resource_url=URL, request_hash="h1")
    assert len(asked) == 1 and asked[0].amount == 1_000_000 and "1.000000 USDC" in str(asked[0])
    assert signer.signed == 0 and ledger.payments() == []
    approving = make_wallet(approval_threshold=500_000, approver=lambda req: True)
    approving.authorize(parse_payment_required(SPEC_402), resource_url=URL, request_hash="h1")
    assert signer.signed == 1


def test_no_approver_means_no(make_wallet, signer) -> None:
    wallet = make_wallet(approval_threshold=0)
    with pytest.raises(ApprovalDeniedError):
        wallet.authorize(parse_payment_required(SPEC_402), resource_url=URL, request_hash="h")
    assert signer.signed == 0


def test_kill_switch_from_another_process_stops_payments(make_wallet, signer, ledger, tmp_path) -> None:
    wallet = make_wallet()
    wallet.authorize(parse_payment_required(SPEC_402), resource_url=URL, request_hash="a")
    db = tmp_path / "ledger.sqlite3"
    code = f"from imagine_agent.ledger import open_ledger; l = open_ledger({str(db)!r}); l.set_frozen(True); l.close()"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    with pytest.raises(WalletFrozenError, match="--unfreeze"):
        wallet.authorize(parse_payment_required(SPEC_402), resource_url=URL, request_hash="b")
    assert signer.signed == 1
    ledger.set_frozen(False)
    wallet.authorize(parse_payment_required(SPEC_402), resource_url=URL, request_hash="b")
    assert signer.signed == 2


def test_daily_cap_counts_every_unreleased_payment(make_wallet, signer, ledger) -> None:
    wallet = make_wallet(daily=2_500_000)
    required = parse_payment_required(SPEC_402)
    first = wallet.authorize(required, resource_url=URL, request_hash="1")
    wallet.unknown(first, "lost answer")
    second = wallet.authorize(required, resource_url=URL, request_hash="2")
    wallet.settled(second, task_id="t2", receipt=None)
    with pytest.raises(BudgetExceededError, match="daily cap"):
        wallet.authorize(required, resource_url=URL, request_hash="3")
    assert signer.signed == 2
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


def test_caps_cannot_come_from_tool_arguments() -> None:
    """The service API has no parameter that changes a cap: only Settings does."""
    import inspect

    from imagine_agent.service import ImagineService

    for name in ("generate", "quote", "agenerate", "aquote", "build_request"):
        params = set(inspect.signature(getattr(ImagineService, name)).parameters)
        assert not params & {"max_per_call", "daily_cap", "total_cap", "caps", "policy", "approval_threshold"}
