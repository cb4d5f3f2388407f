"""The approvals queue through the wallet and the service: nothing reserved or signed while waiting, one
approval pays that request once at that price or less, a denial is final, refusals and warnings are audited."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagine_agent.approvals import QueueApprover
from imagine_agent.config import Settings
from imagine_agent.errors import ApprovalDeniedError, AwaitingApprovalError, BudgetExceededError, WalletFrozenError
from imagine_agent.ledger import ApprovalState, open_ledger
from imagine_agent.sandbox import SandboxServer
from imagine_agent.service import ImagineService
from imagine_agent.x402 import PrivateKeySigner, parse_payment_required

from ..conftest import FAST_POLL_SETTINGS
from ..spec import SPEC_402

URL = "https://eliza.getimagine.club/generation/create"
PAY_TO = "0x13a9e3ee4A25C3C72D67F42044438aabc54f2b96"  # what tests/payment-required.json names


def test_over_the_threshold_it_queues_then_pays_once_when_approved(make_wallet, counting_signer, ledger) -> None:
    wallet = make_wallet(approval_threshold=500_000)
    wallet.approver = QueueApprover(ledger, "social-bot", ttl=3600)
    required = parse_payment_required(SPEC_402)
    with pytest.raises(AwaitingApprovalError) as waiting:
        wallet.authorize(required, resource_url=URL, request_hash="h1", description="a fox")
    assert waiting.value.code == "awaiting_approval"
    assert f"approvals approve {waiting.value.approval_id}" in str(waiting.value)
    with pytest.raises(AwaitingApprovalError) as again:  # the bot's next pass: same entry, still nothing signed
        wallet.authorize(required, resource_url=URL, request_hash="h1", description="a fox")
    assert again.value.approval_id == waiting.value.approval_id
    assert counting_signer.signed == 0 and ledger.payments() == []
    (entry,) = ledger.approvals()
    assert (entry.amount, entry.requester, entry.description) == (1_000_000, "social-bot", "a fox")

    ledger.decide_approval(entry.id, approve=True, decided_by="console", ttl=3600)
    auth = wallet.authorize(required, resource_url=URL, request_hash="h1", description="a fox")
    assert counting_signer.signed == 1 and ledger.get_approval(entry.id).state is ApprovalState.USED
    assert ledger.get_approval(entry.id).payment_id == auth.payment_id
    with pytest.raises(AwaitingApprovalError) as third:  # used up: a second payment asks again
        wallet.authorize(required, resource_url=URL, request_hash="h1", description="a fox")
    assert third.value.approval_id != entry.id and counting_signer.signed == 1


def test_a_denial_is_final_even_for_an_interactive_approver(make_wallet, counting_signer, ledger) -> None:
    queued = make_wallet(approval_threshold=0, approver=QueueApprover(ledger, "mcp"))
    required = parse_payment_required(SPEC_402)
    with pytest.raises(AwaitingApprovalError) as waiting:
        queued.authorize(required, resource_url=URL, request_hash="h", description="x")
    ledger.decide_approval(waiting.value.approval_id, approve=False, decided_by="cli", reason="no", ttl=3600)
    yes_man = make_wallet(approval_threshold=0, approver=lambda request: True)
    for wallet in (queued, yes_man):
        with pytest.raises(ApprovalDeniedError, match="denial is final") as denied:
            wallet.authorize(required, resource_url=URL, request_hash="h", description="x")
        assert denied.value.code == "approval_denied" and not isinstance(denied.value, AwaitingApprovalError)
    assert counting_signer.signed == 0
    assert [e.code for e in ledger.events(kinds=["refusal"])] == ["approval_denied", "approval_denied"]


def test_nothing_waits_that_the_caps_would_refuse(make_wallet, counting_signer, ledger) -> None:
    wallet = make_wallet(approval_threshold=0, daily=500_000, approver=QueueApprover(ledger, "mcp"))
    with pytest.raises(BudgetExceededError) as refused:
        wallet.authorize(parse_payment_required(SPEC_402), resource_url=URL, request_hash="h")
    assert refused.value.code == "daily_cap"
    assert ledger.approvals() == [] and counting_signer.signed == 0


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"per_call": 100}, "per_call_cap"),
        ({"daily": 100}, "daily_cap"),
        ({"total": 100}, "total_cap"),
        ({"networks": frozenset({"base-sepolia"})}, "network_not_allowed"),
        ({"pay_to": frozenset({"0x000000000000000000000000000000000000dEaD"})}, "payee_not_allowed"),
        ({"max_validity_seconds": 1}, "validity_too_long"),
        ({"approval_threshold": 0}, "approval_denied"),
    ],
)
def test_every_refusal_has_its_code_and_an_audit_line(make_wallet, counting_signer, ledger, kwargs, code) -> None:
    wallet = make_wallet(**kwargs)
    with pytest.raises((BudgetExceededError, ApprovalDeniedError, Exception)) as refused:
        wallet.authorize(parse_payment_required(SPEC_402), resource_url=URL, request_hash="h")
    assert getattr(refused.value, "code", None) == code
    (line,) = ledger.events(kinds=["refusal"])
    assert (line.code, line.request_hash) == (code, "h") and counting_signer.signed == 0


def test_frozen_and_rate_limited_refusals_are_audited(make_wallet, counting_signer, ledger) -> None:
    ledger.set_frozen(True, reason="incident")
    with pytest.raises(WalletFrozenError) as frozen:
        make_wallet().authorize(parse_payment_required(SPEC_402), resource_url=URL, request_hash="h")
    assert frozen.value.code == "frozen"
    ledger.set_frozen(False)
    wallet = make_wallet()
    wallet.policy = type(wallet.policy)(caps=type(wallet.policy.caps)(per_call=5_000_000, rate_per_minute=1))
    wallet.authorize(parse_payment_required(SPEC_402), resource_url=URL, request_hash="a")
    with pytest.raises(BudgetExceededError) as limited:
        wallet.authorize(parse_payment_required(SPEC_402), resource_url=URL, request_hash="b")
    assert limited.value.code == "rate_limit"
    assert [e.code for e in ledger.events(kinds=["refusal"])] == ["rate_limit", "frozen"]


def test_budget_warnings_reach_listeners_and_the_outcome(tmp_path: Path, sandbox_server: SandboxServer) -> None:
    settings = Settings(
        base_url=sandbox_server.url,
        data_dir=tmp_path,
        daily_cap="1",
        approval_threshold=None,
        allow_private_image_urls=True,
        **FAST_POLL_SETTINGS,
    )
    seen = []
    with ImagineService.create(settings, signer=PrivateKeySigner.generate()) as service:
        service.wallet.listeners.append(seen.append)
        first = service.generate("a lantern on a lake", duration=1, wait=False)  # sandbox: 0.125 USDC a second
        prices = [p.amount for p in service.receipts()]
        assert first.warnings == [] and prices == [125_000]
        outcomes = [service.generate(f"scene {i}", duration=2, wait=False) for i in range(3)]  # to 0.875 USDC
    assert [o.warnings != [] for o in outcomes] == [False, False, True]
    assert "daily budget is past 80 %" in outcomes[2].warnings[0] and outcomes[2].to_json()["warnings"]
    assert [e.code for e in seen] == ["daily_80"]


def test_the_service_queues_for_a_surface_without_a_human(tmp_path: Path, sandbox_server: SandboxServer) -> None:
    settings = Settings(
        base_url=sandbox_server.url,
        data_dir=tmp_path,
        approval_threshold="0.1",
        allow_private_image_urls=True,
        **FAST_POLL_SETTINGS,
    )
    with ImagineService.create(settings, signer=PrivateKeySigner.generate()) as service:
        service.queue_approvals("mcp")
        with pytest.raises(AwaitingApprovalError) as waiting:
            service.generate("a paper boat", duration=1, wait=False)
        with open_ledger(settings.ledger_location) as operator:  # another process: the operator
            (entry,) = operator.approvals()
            assert entry.request_json is not None
            assert json.loads(entry.request_json) == {
                "prompt": "a paper boat",
                "templateData": {"duration": 1, "autoClank": False, "autoEnhance": False},
            }  # no videoModel: the server's default
            operator.decide_approval(waiting.value.approval_id, approve=True, decided_by="cli", ttl=60)
        outcome = service.generate("a paper boat", duration=1)
        assert outcome.status is not None and outcome.status.status == "completed"
        assert [p.state.value for p in service.receipts()] == ["paid"]


def test_one_approval_pays_once_under_concurrency(tmp_path: Path) -> None:
    """Eight processes' worth of wallets race to use one approval: exactly one reservation is made."""
    import threading

    from imagine_agent.errors import PaymentInFlightError
    from imagine_agent.ledger import Caps
    from imagine_agent.wallet import PaymentPolicy, Wallet

    db = tmp_path / "ledger.sqlite3"
    with open_ledger(db) as setup:
        # An approval binds the payee and network (issue 22 d): the ones the spec's 402 names.
        entry = setup.request_approval(
            request_hash="h",
            amount=1_000_000,
            asset="a",
            network="base",
            pay_to=PAY_TO,
            resource=URL,
            description="x",
            requester="bot",
            ttl=600,
        )
        setup.decide_approval(entry.id, approve=True, decided_by="cli", ttl=600)
    results: list[str] = []

    def pay() -> None:
        with open_ledger(db) as ledger:
            wallet = Wallet(
                PrivateKeySigner.generate(), ledger, PaymentPolicy(caps=Caps(per_call=5_000_000), approval_threshold=0)
            )
            try:
                wallet.authorize(parse_payment_required(SPEC_402), resource_url=URL, request_hash="h")
                results.append("signed")
            except (ApprovalDeniedError, PaymentInFlightError) as exc:  # in flight: the winner's reservation
                results.append(exc.code)

    threads = [threading.Thread(target=pay) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("signed") == 1 and len(results) == 8
    assert set(results) - {"signed"} <= {"approval_denied", "approval_expired", "payment_in_flight"}
    with open_ledger(db) as ledger:
        assert len(ledger.payments()) == 1 and ledger.get_approval(entry.id).state is ApprovalState.USED


def test_a_coin_under_ask_is_queued_whatever_its_price(tmp_path: Path, sandbox_server: SandboxServer) -> None:
    settings = Settings(
        base_url=sandbox_server.url,
        data_dir=tmp_path,
        approval_threshold=None,
        auto_clank="ask",
        allow_private_image_urls=True,
        **FAST_POLL_SETTINGS,
    )
    with ImagineService.create(settings, signer=PrivateKeySigner.generate()) as service:
        service.queue_approvals("plugin")
        plain = service.generate("no coin here", duration=1, wait=False)  # no coin, no threshold: pays
        assert plain.payment is not None
        with pytest.raises(AwaitingApprovalError, match="deploys a coin") as waiting:
            service.generate("a coin please", duration=1, auto_clank=True, wait=False)
        assert len(service.receipts()) == 1
        service.ledger.decide_approval(waiting.value.approval_id, approve=True, decided_by="cli", ttl=60)
        coined = service.generate("a coin please", duration=1, auto_clank=True, wait=False)
        assert coined.payment is not None and len(service.receipts()) == 2


async def test_the_async_path_queues_and_continues_too(tmp_path: Path, sandbox_server: SandboxServer) -> None:
    settings = Settings(
        base_url=sandbox_server.url,
        data_dir=tmp_path,
        approval_threshold="0.1",
        allow_private_image_urls=True,
        **FAST_POLL_SETTINGS,
    )
    with ImagineService.create(settings, signer=PrivateKeySigner.generate()) as service:
        service.queue_approvals("mcp")
        with pytest.raises(AwaitingApprovalError) as waiting:
            await service.agenerate("an async comet", duration=1, wait=False)
        assert service.receipts() == []
        service.ledger.decide_approval(waiting.value.approval_id, approve=True, decided_by="console", ttl=60)
        outcome = await service.agenerate("an async comet", duration=1)
        assert outcome.status is not None and outcome.status.status == "completed"
        assert [p.state.value for p in service.receipts()] == ["paid"]


def test_a_quote_over_a_window_names_its_code(tmp_path: Path, sandbox_server: SandboxServer) -> None:
    settings = Settings(base_url=sandbox_server.url, data_dir=tmp_path, daily_cap="0.2", allow_private_image_urls=True)
    with ImagineService.create(settings, signer=PrivateKeySigner.generate()) as service:
        quote = service.quote("a long storm", duration=2)
    assert (quote.allowed, quote.refusal_code, quote.to_json()["refusalCode"]) == (False, "daily_cap", "daily_cap")
