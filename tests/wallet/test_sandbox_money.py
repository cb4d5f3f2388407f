"""Sandbox money is never real money (money-safety rule 8): the claim is believed from loopback only, sandbox
payments count against their own windows of the same caps, and the operator's kill switch stops them too."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagine_agent.errors import BudgetExceededError, PolicyViolationError, WalletFrozenError
from imagine_agent.ledger import Caps, open_ledger
from imagine_agent.models import PaymentRequired
from imagine_agent.wallet import PaymentPolicy, Wallet
from imagine_agent.x402 import parse_payment_required

from ..spec import SPEC_402

REMOTE = "https://eliza.getimagine.club/generation/create"
LOOPBACK = "http://127.0.0.1:8402/generation/create"


def required_for(url: str) -> PaymentRequired:
    required = parse_payment_required(SPEC_402)  # 1.00 USDC
    return required.model_copy(update={"accepts": [required.accepts[0].model_copy(update={"resource": url})]})


def test_a_remote_claim_is_not_believed(make_wallet, ledger) -> None:
    wallet = make_wallet()
    auth = wallet.authorize(required_for(REMOTE), resource_url=REMOTE, request_hash="r", sandbox=True)
    record = ledger.get(auth.payment_id)
    assert record.sandbox is False and record.origin == "https://eliza.getimagine.club"
    assert wallet.budget().reserved == 1_000_000 and wallet.budget(sandbox=True).reserved == 0


def test_a_loopback_sandbox_pays_from_its_own_windows_of_the_same_caps(make_wallet, ledger, counting_signer) -> None:
    wallet = make_wallet(daily=1_500_000)
    auth = wallet.authorize(required_for(LOOPBACK), resource_url=LOOPBACK, request_hash="s1", sandbox=True)
    record = ledger.get(auth.payment_id)
    assert record.sandbox is True and record.origin == "http://127.0.0.1:8402"
    assert wallet.budget().reserved == 0 and wallet.budget().remaining_daily == 1_500_000  # real budget untouched
    assert wallet.budget(sandbox=True).reserved == 1_000_000
    with pytest.raises(BudgetExceededError, match="sandbox daily cap"):  # never unlimited
        wallet.authorize(required_for(LOOPBACK), resource_url=LOOPBACK, request_hash="s2", sandbox=True)
    wallet.authorize(required_for(REMOTE), resource_url=REMOTE, request_hash="real")  # the real window is its own
    assert counting_signer.signed == 2
    assert [p.sandbox for p in ledger.payments(sandbox=True)] == [True]
    assert [p.sandbox for p in ledger.payments(sandbox=False)] == [False]


def test_a_sandbox_ledger_wallet_pays_only_a_claiming_loopback_server(ledger, counting_signer, tmp_path: Path) -> None:
    with open_ledger(tmp_path / "operator.sqlite3") as operator:
        policy = PaymentPolicy(caps=Caps(per_call=5_000_000, daily=4_500_000))
        wallet = Wallet(counting_signer, ledger, policy, kill_switch=operator, sandbox_only=True)
        with pytest.raises(PolicyViolationError, match="does not identify itself"):
            wallet.authorize(required_for(LOOPBACK), resource_url=LOOPBACK, request_hash="a")  # no claim
        with pytest.raises(PolicyViolationError, match="does not identify itself"):
            wallet.authorize(required_for(REMOTE), resource_url=REMOTE, request_hash="b", sandbox=True)
        assert counting_signer.signed == 0 and ledger.payments() == []
        operator.set_frozen(True, reason="operator")  # the operator's kill switch stops the sandbox too
        with pytest.raises(WalletFrozenError):
            wallet.authorize(required_for(LOOPBACK), resource_url=LOOPBACK, request_hash="c", sandbox=True)
        assert wallet.budget(sandbox=True).frozen is True
        operator.set_frozen(False)
        wallet.authorize(required_for(LOOPBACK), resource_url=LOOPBACK, request_hash="c", sandbox=True)
        assert counting_signer.signed == 1
        # Its budget is the sandbox windows (what the plugin and tools show for "next video")...
        assert wallet.budget().reserved == 1_000_000 and wallet.remaining() == 3_500_000
        assert wallet.budget(sandbox=False).reserved == 0  # ...and the real windows stay untouched
