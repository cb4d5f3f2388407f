"""Every verdict of reconcile, against a scripted node on loopback: changing any one fails a named test.

``chain.examine`` decides (paid by receipt, paid by log, used without a log, cancelled in or after the
window, released at validBefore by block time, still open) and ``books.reconcile_ledger`` records it. What
frees budget is checked as hard as what keeps it: "released" or "cancelled" for a payment that may have
settled would let the agent spend the same money twice.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from imagine_agent.books import reconcile_ledger
from imagine_agent.errors import ProtocolError
from imagine_agent.ledger import Caps, Ledger, PaymentRecord, PaymentState
from imagine_agent.wallet import Wallet
from imagine_agent.x402 import decode_payment_header, parse_payment_required

from ..scripted_rpc import ScriptedNode, receipt_log
from ..spec import SPEC_402

URL = "https://eliza.getimagine.club/generation/create"
TX = "0x" + "ab" * 32
OTHER_TX = "0x" + "cd" * 32
CAPS = Caps(per_call=5_000_000, daily=None, total=None)


@dataclass
class Journaled:
    """One signed payment whose answer was lost, and a node whose blocks span its validity window."""

    ledger: Ledger
    record: PaymentRecord
    node: ScriptedNode
    valid_after_block: int
    valid_before_block: int

    def log(self, kind: str, block: int, tx: str = TX) -> None:
        assert self.record.nonce is not None
        self.node.logs.append(
            receipt_log(
                "used" if kind == "used" else "cancelled", self.record.payer, self.record.nonce, tx=tx, block=block
            )
        )

    def reconcile(self) -> PaymentRecord:
        with self.node.serve() as url:
            changed = reconcile_ledger(self.ledger, url)
        assert [r.id for r in changed] in ([], [self.record.id])
        return self.ledger.get(self.record.id)

    def counted(self) -> int:
        """What the budget counts as gone: spent, unknown (pending included) or reserved."""
        totals = self.ledger.totals(CAPS)
        return totals.spent + totals.unknown + totals.reserved


def journal(make_wallet: Callable[..., Wallet], ledger: Ledger, *, pending_tx: str | None = None) -> Journaled:
    wallet = make_wallet()
    auth = wallet.authorize(parse_payment_required(SPEC_402), resource_url=URL, request_hash="h")
    if pending_tx is not None:
        wallet.pending(auth, transaction=pending_tx, reason="settlement_pending")
    else:
        wallet.unknown(auth, "the answer to the paid create was lost")
    record = ledger.get(auth.payment_id)
    assert record.header is not None and record.valid_before is not None
    valid_after = int(decode_payment_header(record.header).payload.authorization.valid_after)
    node = ScriptedNode(first_time=valid_after - 100, latest=0)
    return Journaled(ledger, record, node, node.block_at_time(valid_after), node.block_at_time(record.valid_before))


@pytest.fixture
def journaled(make_wallet: Callable[..., Wallet], ledger: Ledger) -> Journaled:
    return journal(make_wallet, ledger)


def test_a_used_nonce_with_its_authorization_used_log_is_paid_with_that_transaction(journaled: Journaled) -> None:
    journaled.node.latest = journaled.valid_before_block + 10
    journaled.node.authorization_used = True
    journaled.log("used", journaled.valid_after_block + 3)
    record = journaled.reconcile()
    assert (record.state, record.transaction) == (PaymentState.PAID, TX)
    assert "AuthorizationUsed" in (record.reason or "")


def test_a_used_nonce_without_any_log_in_the_scanned_blocks_is_counted_as_paid(journaled: Journaled) -> None:
    """authorizationState says used, no AuthorizationUsed/AuthorizationCanceled log anywhere it looked
    (a pruned node, a provider dropping logs): the money may have moved, so it is paid, never released."""
    journaled.node.latest = journaled.valid_before_block + 10
    journaled.node.authorization_used = True
    record = journaled.reconcile()
    assert (record.state, record.transaction) == (PaymentState.PAID, None)
    assert "counted as paid" in (record.reason or "") and "no AuthorizationUsed" in (record.reason or "")
    assert journaled.counted() == record.amount
    assert "eth_getLogs" in journaled.node.calls  # it did look before deciding


def test_a_used_nonce_cancelled_inside_the_window_is_cancelled(journaled: Journaled) -> None:
    journaled.node.latest = journaled.valid_before_block + 10
    journaled.node.authorization_used = True
    journaled.log("cancelled", journaled.valid_after_block + 3)
    record = journaled.reconcile()
    assert record.state == PaymentState.CANCELLED and "AuthorizationCanceled" in (record.reason or "")
    assert journaled.counted() == 0


def test_a_used_nonce_cancelled_after_valid_before_is_cancelled(journaled: Journaled) -> None:
    journaled.node.latest = journaled.valid_before_block + 50
    journaled.node.authorization_used = True
    journaled.log("cancelled", journaled.valid_before_block + 20)  # past the window: found by the later scan
    record = journaled.reconcile()
    assert record.state == PaymentState.CANCELLED and "can never settle" in (record.reason or "")


def test_a_used_log_wins_over_a_cancelled_one(journaled: Journaled) -> None:
    journaled.node.latest = journaled.valid_before_block + 10
    journaled.node.authorization_used = True
    journaled.log("cancelled", journaled.valid_after_block + 2, tx=OTHER_TX)
    journaled.log("used", journaled.valid_after_block + 4)
    record = journaled.reconcile()
    assert (record.state, record.transaction) == (PaymentState.PAID, TX)


def test_an_unused_nonce_exactly_at_valid_before_by_block_time_is_released(journaled: Journaled) -> None:
    """The contract refuses an authorization once block time reaches validBefore: equal is dead."""
    journaled.node.latest = journaled.valid_before_block  # latest block's time == validBefore
    record = journaled.reconcile()
    assert record.state == PaymentState.RELEASED and "unused on chain" in (record.reason or "")
    assert journaled.counted() == 0


def test_an_unused_nonce_one_second_before_valid_before_stays_open(journaled: Journaled) -> None:
    journaled.node.latest = journaled.valid_before_block - 1
    record = journaled.reconcile()
    assert record.state == PaymentState.UNKNOWN and journaled.counted() == record.amount


def test_a_pending_payment_is_paid_by_its_receipt_before_anything_else_is_read(
    make_wallet: Callable[..., Wallet], ledger: Ledger
) -> None:
    journaled = journal(make_wallet, ledger, pending_tx=TX)
    journaled.node.latest = journaled.valid_before_block - 1  # nonce reads as unused and still open
    assert journaled.record.nonce is not None
    used = receipt_log(
        "used", journaled.record.payer, journaled.record.nonce, tx=TX, block=journaled.valid_after_block + 1
    )
    journaled.node.receipts[TX] = {
        "status": "0x1",
        "blockNumber": hex(journaled.valid_after_block + 1),
        "transactionHash": TX,
        "logs": [used],
    }
    record = journaled.reconcile()
    assert (record.state, record.transaction) == (PaymentState.PAID, TX) and "tx " + TX in (record.reason or "")


def test_a_pending_payment_whose_transaction_reverted_is_judged_by_the_nonce(
    make_wallet: Callable[..., Wallet], ledger: Ledger
) -> None:
    journaled = journal(make_wallet, ledger, pending_tx=TX)
    journaled.node.latest = journaled.valid_before_block + 1
    journaled.node.receipts[TX] = {
        "status": "0x0",
        "blockNumber": hex(journaled.valid_after_block + 1),
        "transactionHash": TX,
        "logs": [],
    }
    record = journaled.reconcile()
    assert record.state == PaymentState.RELEASED


@pytest.mark.parametrize(
    "receipt",
    [
        {"status": "0x1", "logs": True},
        {"status": "0x1", "logs": None},
        {"status": "0x1", "logs": [7]},
        {"status": "0x1", "logs": [{"address": "0x" + "11" * 20, "topics": "0xdead", "data": "0x"}]},
        {"status": "0x1", "logs": [{"address": "0x" + "11" * 20, "topics": [1, 2], "data": "0x"}]},
        {"status": "0x1", "logs": [{"address": 5, "topics": [], "data": "0x"}]},
        {"status": "0x1", "logs": [{"address": "0x" + "11" * 20, "topics": [], "data": 0}]},
    ],
    ids=["logs-true", "logs-null", "log-int", "topics-str", "topics-ints", "address-int", "data-int"],
)
def test_a_malformed_receipt_is_the_rpcs_fault_and_the_payment_stays_counted(
    make_wallet: Callable[..., Wallet], ledger: Ledger, receipt: dict[str, object]
) -> None:
    journaled = journal(make_wallet, ledger, pending_tx=TX)
    journaled.node.latest = journaled.valid_before_block + 10
    journaled.node.receipts[TX] = {"blockNumber": "0x1", "transactionHash": TX, **receipt}
    with journaled.node.serve() as url, pytest.raises(ProtocolError, match=r"RPC .* malformed receipt") as caught:
        reconcile_ledger(ledger, url)
    assert not isinstance(caught.value.__cause__ or caught.value.__context__, TypeError)
    record = ledger.get(journaled.record.id)
    assert record.state == PaymentState.PENDING and journaled.counted() == record.amount


def test_reconcile_callers_report_a_malformed_receipt_cleanly_and_change_nothing(
    make_wallet: Callable[..., Wallet], ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``imagine-agent reconcile`` answers one JSON error (no traceback), the console one line on its page;
    the payment stays pending, counted as spent."""
    from typer.testing import CliRunner

    from imagine_agent.cli import app
    from imagine_agent.config import Settings
    from imagine_agent.console import ConsoleServer

    journaled = journal(make_wallet, ledger, pending_tx=TX)
    journaled.node.latest = journaled.valid_before_block + 10
    journaled.node.receipts[TX] = {"status": "0x1", "blockNumber": "0x1", "transactionHash": TX, "logs": True}
    for name in [n for n in os.environ if n.startswith("IMAGINE_")]:
        monkeypatch.delenv(name)
    with journaled.node.serve() as url:
        env = {
            "IMAGINE_DATA_DIR": str(tmp_path / "data"),
            "IMAGINE_RPC_URL": url,
            "IMAGINE_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
        }
        done = CliRunner().invoke(app, ["reconcile", "--real", "--json"], env=env, catch_exceptions=False)
        assert "Traceback" not in done.stdout + done.stderr
        (line,) = done.stdout.splitlines()
        body = json.loads(line)
        assert done.exit_code != 0 and body["exitCode"] == done.exit_code and "malformed receipt" in body["message"]

        with (
            ConsoleServer(ledger, Settings(data_dir=tmp_path / "data", rpc_url=url)) as console,
            httpx.Client(base_url=console.url, timeout=30) as browser,
        ):
            browser.get(f"/?token={console.token}")
            csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/").text)
            assert csrf is not None
            answer = browser.post("/reconcile", data={"csrf": csrf.group(1)}, headers={"origin": console.url})
            assert answer.status_code == 303 and "malformed%20receipt" in answer.headers["location"]
            assert "malformed receipt" in browser.get(answer.headers["location"]).text
    record = ledger.get(journaled.record.id)
    assert record.state == PaymentState.PENDING and journaled.counted() == record.amount
