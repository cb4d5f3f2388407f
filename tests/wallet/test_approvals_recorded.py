"""Every approval is a ledger record bound to the request, the price ceiling, the payee and the network (issue 20
items 2 and 3, (a), (b), (f); issue 22 (d)): one approver in the wallet, a person's yes carried to it as a value."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp.client import Client

from imagine_agent.approvals import QueueApprover
from imagine_agent.client import AsyncImagineClient, ImagineClient
from imagine_agent.config import Settings
from imagine_agent.errors import ApprovalDeniedError, AwaitingApprovalError
from imagine_agent.ledger import ApprovalState, Ledger, open_ledger
from imagine_agent.mcp_server import create_server
from imagine_agent.models import CreateRequest
from imagine_agent.polling import PollPolicy
from imagine_agent.sandbox import SandboxServer
from imagine_agent.service import ImagineService
from imagine_agent.wallet import PersonApproval, person_approved
from imagine_agent.x402 import PrivateKeySigner, parse_payment_required

from ..conftest import FAST_POLL_SETTINGS
from ..spec import SPEC_402

URL = "https://eliza.getimagine.club/generation/create"
OTHER_PAYEE = "0x" + "ab" * 20
FAST = PollPolicy(0.02, 0.02, 0.05)


def _switched() -> Any:
    """The spec's 402, naming another (allowlisted) payee."""
    body = json.loads(SPEC_402)
    body["accepts"] = [{**body["accepts"][0], "payTo": OTHER_PAYEE}]
    return parse_payment_required(json.dumps(body))


def _settings(sandbox: SandboxServer, tmp_path: Path, **extra: Any) -> Settings:
    from imagine_agent.config import IMAGINE_PAY_TO

    return Settings(
        base_url=sandbox.url,
        data_dir=tmp_path,
        allow_private_image_urls=True,
        **FAST_POLL_SETTINGS,
        pay_to=[IMAGINE_PAY_TO, OTHER_PAYEE],
        **extra,
    )


# ------------------------------------------------------------------------------ issue 22 (d): payee and network


def test_an_approval_is_not_paid_to_another_payee_or_network(make_wallet, counting_signer, ledger: Ledger) -> None:
    """The operator approved paying Imagine on base; a 402 naming another allowlisted payee (or network) needs
    a new approval, and the first one stays unused."""
    from imagine_agent.config import IMAGINE_PAY_TO

    wallet = make_wallet(
        approval_threshold=0,
        approver=QueueApprover(ledger, "bot"),
        pay_to=frozenset({IMAGINE_PAY_TO, OTHER_PAYEE}),
        networks=frozenset({"base", "base-sepolia"}),
    )
    required = parse_payment_required(SPEC_402)
    with pytest.raises(AwaitingApprovalError) as waiting:
        wallet.authorize(required, resource_url=URL, request_hash="h")
    first = waiting.value.approval_id
    ledger.decide_approval(first, approve=True, decided_by="console", ttl=600)

    switched = _switched()
    with pytest.raises(AwaitingApprovalError) as again:
        wallet.authorize(switched, resource_url=URL, request_hash="h")
    assert again.value.approval_id != first and counting_signer.signed == 0 and ledger.payments() == []
    assert ledger.get_approval(first).state is ApprovalState.EXPIRED  # superseded: the payee changed
    assert ledger.get_approval(again.value.approval_id).pay_to.lower() == OTHER_PAYEE

    # The reservation itself refuses an approval bound to another payee (whatever a caller claims).
    other = ledger.decide_approval(again.value.approval_id, approve=True, decided_by="console", ttl=600)
    for pay_to, network in ((IMAGINE_PAY_TO, other.network), (OTHER_PAYEE, "base-sepolia")):
        with pytest.raises(ApprovalDeniedError, match="new approval"):
            ledger.reserve(
                request_hash="h",
                amount=1_000_000,
                asset=other.asset,
                network=network,
                pay_to=pay_to,
                payer=counting_signer.address,
                resource=URL,
                caps=wallet.policy.caps,
                approval_id=other.id,
            )
    assert counting_signer.signed == 0 and ledger.get_approval(other.id).state is ApprovalState.APPROVED


def test_a_persons_yes_for_one_payee_does_not_pay_another(make_wallet, counting_signer, ledger: Ledger) -> None:
    from imagine_agent.config import IMAGINE_PAY_TO

    wallet = make_wallet(
        approval_threshold=0, approver=QueueApprover(ledger, "mcp"), pay_to=frozenset({IMAGINE_PAY_TO, OTHER_PAYEE})
    )
    switched = _switched()
    shown = PersonApproval(1_000_000, "mcp", "mcp:test", pay_to=IMAGINE_PAY_TO, network="base")
    with person_approved(shown), pytest.raises(AwaitingApprovalError):  # not what the person saw: the queue asks
        wallet.authorize(switched, resource_url=URL, request_hash="h")
    assert counting_signer.signed == 0
    with person_approved(shown):
        auth = wallet.authorize(parse_payment_required(SPEC_402), resource_url=URL, request_hash="h")
    (used,) = [a for a in ledger.approvals() if a.state is ApprovalState.USED]
    assert (used.payment_id, used.decided_by, used.surface) == (auth.payment_id, "mcp:test", "mcp")


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_the_clients_do_not_pay_a_switched_payee_on_the_old_approval(
    tmp_path: Path, sandbox_server: SandboxServer, make_wallet, counting_signer, ledger: Ledger, flavour: str
) -> None:
    from imagine_agent.config import IMAGINE_PAY_TO

    wallet = make_wallet(
        approval_threshold=0, approver=QueueApprover(ledger, "bot"), pay_to=frozenset({IMAGINE_PAY_TO, OTHER_PAYEE})
    )
    request = CreateRequest.build("a lighthouse", duration=1)

    def create() -> Any:
        if flavour == "sync":
            with ImagineClient(sandbox_server.url, wallet=wallet, poll=FAST) as client:
                return client.create(request)

        async def run() -> Any:
            async with AsyncImagineClient(sandbox_server.url, wallet=wallet, poll=FAST) as client:
                return await client.create(request)

        return asyncio.run(run())

    with pytest.raises(AwaitingApprovalError) as waiting:
        create()
    ledger.decide_approval(waiting.value.approval_id, approve=True, decided_by="cli", ttl=600)
    sandbox_server.state.config.pay_to = OTHER_PAYEE  # between the approval and the payment
    with pytest.raises(AwaitingApprovalError) as again:
        create()
    assert again.value.approval_id != waiting.value.approval_id
    assert counting_signer.signed == 0 and ledger.payments() == []


# --------------------------------------------------------------------- (b): resume pays exactly what was approved


def test_resume_pays_the_approved_model_at_most_the_approved_price(
    tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    """The operator approved 3 USDC for sora-2-pro: the resumed call pays sora-2-pro at <= 3 USDC (never the
    0.5 USDC default model) and uses the approval up."""
    settings = _settings(sandbox_server, tmp_path, approval_threshold="1")
    with ImagineService.create(settings, signer=PrivateKeySigner.generate()) as service:
        service.queue_approvals("mcp")
        with pytest.raises(AwaitingApprovalError) as waiting:
            service.generate("a glacier at dawn", duration=4, video_model="sora-2-pro", wait=False)
        approval_id = waiting.value.approval_id
        entry = service.ledger.get_approval(approval_id)
        assert entry.amount == 3_000_000
        assert json.loads(entry.request_json or "{}")["templateData"]["videoModel"] == "sora-2-pro"
        service.ledger.decide_approval(approval_id, approve=True, decided_by="console", ttl=600)

        outcome = service.resume_approval(approval_id, wait=False)
        assert outcome.payment is not None and outcome.payment.amount <= 3_000_000
        (paid,) = service.receipts()
        assert paid.request_hash == entry.request_hash and paid.amount == 3_000_000
        used = service.ledger.get_approval(approval_id)
        assert used.state is ApprovalState.USED and used.payment_id == paid.id
        job = sandbox_server.state.job(outcome.task_id)
        assert job is not None and job.model == "sora-2-pro"


def test_resume_refuses_a_rebuilt_request_that_is_not_the_approved_one(
    tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    settings = _settings(sandbox_server, tmp_path, approval_threshold="0.1")
    with ImagineService.create(settings, signer=PrivateKeySigner.generate()) as service:
        entry = service.ledger.request_approval(
            request_hash="not-this-request",
            amount=1_000_000,
            asset="a",
            network="base",
            pay_to="p",
            resource=URL,
            description="x",
            requester="mcp",
            ttl=600,
            request_json=json.dumps({"prompt": "a fox", "templateData": {"duration": 1}}),
        )
        service.ledger.decide_approval(entry.id, approve=True, decided_by="cli", ttl=600)
        with pytest.raises(Exception, match="new approval"):
            service.resume_approval(entry.id, wait=False)
        assert service.receipts() == []


# ------------------------------------------------------------------- (a): MCP elicitation is recorded, by name


def _accepting(asked: list[str]) -> Any:
    async def callback(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"approve": True})

    return callback


async def test_an_mcp_elicitation_approval_is_a_ledger_record_naming_the_client(tmp_path: Path) -> None:
    with ImagineService.create(Settings(data_dir=tmp_path, sandbox_speed=200, approval_threshold="0.5")) as service:
        service.output_dir = tmp_path / "videos"
        asked: list[str] = []
        info = types.Implementation(name="desk-client", version="9.1")
        async with Client(create_server(service), elicitation_callback=_accepting(asked), client_info=info) as client:
            done = await client.call_tool(
                "generate_video", {"prompt": "a red balloon rising", "duration": 8, "wait": False}
            )
            assert not done.is_error, done
        assert len(asked) == 1
        (paid,) = service.receipts()
        (entry,) = service.ledger.approvals()
        assert entry.state is ApprovalState.USED and entry.payment_id == paid.id
        assert entry.surface == "mcp" and entry.decided_by is not None and "desk-client" in entry.decided_by
        assert (entry.amount, entry.pay_to.lower(), entry.network) == (paid.amount, paid.pay_to.lower(), paid.network)
        body = json.loads(entry.request_json or "{}")
        assert body["prompt"] == "a red balloon rising" and body["templateData"]["duration"] == 8
        (event,) = service.ledger.events(kinds=["approval"])
        assert event.code == "approved" and event.source is not None and "desk-client" in event.source
        assert event.approval_id == entry.id


async def test_the_operator_can_send_mcp_approvals_to_the_queue(tmp_path: Path) -> None:
    """IMAGINE_MCP_APPROVALS=queue: the client's elicitation answer is not trusted; the operator decides."""
    settings = Settings(data_dir=tmp_path, sandbox_speed=200, approval_threshold="0.5", mcp_approvals="queue")
    with ImagineService.create(settings) as service:
        asked: list[str] = []
        async with Client(create_server(service), elicitation_callback=_accepting(asked)) as client:
            result = await client.call_tool("generate_video", {"prompt": "a red balloon rising", "duration": 8})
        assert result.structured_content is not None and result.structured_content["status"] == "awaiting_approval"
        assert asked == [] and service.receipts() == []
        (entry,) = service.ledger.approvals()
        assert entry.state is ApprovalState.AWAITING and entry.requester == "mcp"


# ------------------------------------------------------------ every surface's decision recorded; (f) kill switch


def test_an_interactive_yes_and_no_are_recorded_with_their_surface(
    make_wallet, counting_signer, ledger: Ledger
) -> None:
    class Prompt:
        surface = "cli"

        def __init__(self, answer: bool) -> None:
            self.answer = answer

        def __call__(self, request: Any) -> bool:
            return self.answer

    required = parse_payment_required(SPEC_402)
    with pytest.raises(ApprovalDeniedError):
        make_wallet(approval_threshold=0, approver=Prompt(False)).authorize(
            required, resource_url=URL, request_hash="h"
        )
    auth = make_wallet(approval_threshold=0, approver=Prompt(True)).authorize(
        required, resource_url=URL, request_hash="h"
    )
    (entry,) = ledger.approvals()
    assert (entry.state, entry.payment_id, entry.surface, entry.decided_by) == (
        ApprovalState.USED,
        auth.payment_id,
        "cli",
        "cli",
    )
    codes = [(e.code, e.source) for e in reversed(ledger.events(kinds=["approval"]))]
    assert codes == [("approval_denied", "cli"), ("approved", "cli")]


def test_the_kill_switch_is_audited_from_every_surface(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from imagine_agent.cli import app

    env = {"IMAGINE_DATA_DIR": str(tmp_path)}
    runner = CliRunner()
    assert runner.invoke(app, ["budget", "--freeze", "--json"], env=env).exit_code == 0
    assert runner.invoke(app, ["budget", "--unfreeze", "--json"], env=env).exit_code == 0
    with open_ledger(Settings(data_dir=tmp_path).ledger_location) as ledger:
        flips = [(e.code, e.source) for e in reversed(ledger.events(kinds=["approval"]))]
    assert flips == [("frozen", "cli"), ("unfrozen", "cli")]
    with ImagineService.create(Settings(data_dir=tmp_path)) as service:
        service.freeze("stop", source="mcp")
        service.unfreeze(source="mcp")
    with open_ledger(Settings(data_dir=tmp_path).ledger_location) as ledger:
        flips = [(e.code, e.source) for e in reversed(ledger.events(kinds=["approval"]))]
    assert flips == [("frozen", "cli"), ("unfrozen", "cli"), ("frozen", "mcp"), ("unfrozen", "mcp")]


def test_a_persons_yes_whose_payment_is_refused_is_never_used_later(
    make_wallet, counting_signer, ledger: Ledger
) -> None:
    """Money safety: a yes recorded for one call is retired when that call's reservation is refused (here: the
    same request is already in flight), so no later call pays on it without asking."""
    from imagine_agent.errors import PaymentInFlightError

    answers: list[bool] = []

    def prompt(request: Any) -> bool:
        answers.append(True)
        return True

    wallet = make_wallet(approval_threshold=0, approver=prompt)
    required = parse_payment_required(SPEC_402)
    wallet.authorize(required, resource_url=URL, request_hash="h")
    with pytest.raises(PaymentInFlightError):
        wallet.authorize(required, resource_url=URL, request_hash="h")
    states = sorted(a.state.value for a in ledger.approvals())
    assert states == ["expired", "used"] and counting_signer.signed == 1 and len(answers) == 2
