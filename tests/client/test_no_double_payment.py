"""Money-safety rule 3: faults after X-PAYMENT went out never lead to a second signature.

Checked against the sandbox's own settlement record: distinct nonces settled == videos requested.
"""

from __future__ import annotations

import pytest

from imagine_agent.client import ImagineClient
from imagine_agent.errors import PaymentStateUnknownError
from imagine_agent.ledger import PaymentState
from imagine_agent.sandbox import SandboxConfig, SandboxServer

from ..conftest import FAST_POLL, LOST_ANSWER_HELD, LOST_ANSWER_TIMEOUT, SPEED

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("fast_retries")]


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "drop_after_payment"},
        {"kind": "error_after_settle"},
        {"kind": "error_before_settle"},
        {"kind": "payment_required_after_settle"},
        {"kind": "drop_after_payment", "params": {"settle": False}},
    ],
)
def test_ambiguous_faults_recover_with_the_same_header(
    fault, imagine_client: ImagineClient, sandbox_server: SandboxServer, counting_signer, ledger
) -> None:
    sandbox_server.state.add_faults(fault)
    job = imagine_client.create("one video please")
    assert job.wait().status == "completed"
    settled = sandbox_server.state.settlements()
    assert len({s.nonce for s in settled}) == len(settled) == 1
    assert counting_signer.signed == 1
    (record,) = ledger.payments()
    assert record.state == PaymentState.PAID and record.task_id == job.task_id


def test_timeout_after_settlement_is_retried_with_the_same_header(make_wallet, counting_signer, ledger) -> None:
    with (
        SandboxServer(SandboxConfig(announce_sandbox=False, speed=SPEED)) as server,
        ImagineClient(server.url, wallet=make_wallet(), poll=FAST_POLL, timeout=LOST_ANSWER_TIMEOUT) as c,
    ):
        held = {"seconds": LOST_ANSWER_HELD, "paid_only": True}
        server.state.add_faults({"kind": "delay", "match": "create", "params": held})
        sent: list[str] = []
        c.http.event_hooks["request"].append(lambda r: sent.append(r.headers.get("x-payment", "")))
        job = c.create("slow answer")
        assert job.wait().status == "completed"
        assert len(server.state.settlements()) == 1
    headers = [h for h in sent if h]
    assert len(headers) == 2 and headers[0] == headers[1]  # re-sent once, the same signed header
    assert counting_signer.signed == 1
    assert ledger.payments()[0].state == PaymentState.PAID


def test_many_videos_many_faults_one_payment_each(
    imagine_client: ImagineClient, sandbox_server: SandboxServer, counting_signer
) -> None:
    faults = ["drop_after_payment", "error_after_settle", "payment_required_after_settle", "error_before_settle"]
    for i, kind in enumerate(faults * 2):
        sandbox_server.state.add_faults({"kind": kind})
        imagine_client.create(f"video number {i}").wait()
    settled = sandbox_server.state.settlements()
    assert len(settled) == len({s.nonce for s in settled}) == 8 == counting_signer.signed


def test_without_idempotent_replay_a_lost_answer_is_unknown_not_repaid(make_wallet, counting_signer, ledger) -> None:
    config = SandboxConfig(announce_sandbox=False, speed=SPEED, idempotent_replay=False)
    with SandboxServer(config) as server, ImagineClient(server.url, wallet=make_wallet(), poll=FAST_POLL) as c:
        server.state.add_faults({"kind": "error_after_settle"})
        with pytest.raises(PaymentStateUnknownError, match="counts as spent"):
            c.create("lost answer")
        assert len(server.state.settlements()) == 1
    assert counting_signer.signed == 1
    (record,) = ledger.payments()
    assert record.state == PaymentState.UNKNOWN
    assert ledger.totals(make_wallet().policy.caps).unknown == record.amount


def test_server_unreachable_signs_nothing(make_wallet, counting_signer, ledger) -> None:
    from imagine_agent.errors import ImagineConnectionError

    with ImagineClient("http://127.0.0.1:9", wallet=make_wallet(), poll=FAST_POLL) as c:
        with pytest.raises(ImagineConnectionError, match="check the base URL"):
            c.create("nobody home")
    assert counting_signer.signed == 0 and ledger.payments() == []


def test_persistent_5xx_after_payment_ends_unknown(make_wallet, counting_signer, ledger) -> None:
    with (
        SandboxServer(SandboxConfig(announce_sandbox=False, speed=SPEED)) as server,
        ImagineClient(server.url, wallet=make_wallet(), poll=FAST_POLL) as c,
    ):
        server.state.add_faults({"kind": "error_after_settle", "times": -1})
        with pytest.raises(PaymentStateUnknownError):
            c.create("answer always lost")
        assert len(server.state.settlements()) == 1
    assert counting_signer.signed == 1
    assert ledger.payments()[0].state == PaymentState.UNKNOWN


def test_payment_never_settled_but_unanswered_is_unknown(make_wallet, counting_signer, ledger) -> None:
    """5xx before settlement, forever: we cannot tell it from a lost answer, so it counts as spent."""
    with (
        SandboxServer(SandboxConfig(announce_sandbox=False, speed=SPEED)) as server,
        ImagineClient(server.url, wallet=make_wallet(), poll=FAST_POLL) as c,
    ):
        server.state.add_faults({"kind": "error_before_settle", "times": -1})
        with pytest.raises(PaymentStateUnknownError):
            c.create("never settled")
        assert server.state.settlements() == []
    assert counting_signer.signed == 1
    assert ledger.payments()[0].state == PaymentState.UNKNOWN
