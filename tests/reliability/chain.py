"""Real-chain rows of the reliability report: payments on Circle's USDC (FiatTokenV2_2) over anvil.

Each row runs against a fresh devnet (``imagine_agent.devnet``) and a sandbox settling on it, and is audited
against the chain itself, not the sandbox's bookkeeping: the USDC that moved, the ``AuthorizationUsed`` logs
of the payer (more than one per request = paid twice), and the ledger (a settlement the ledger does not count
as paid or unknown = lost).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from imagine_agent.chain import AUTHORIZATION_USED
from imagine_agent.client import AsyncImagineClient
from imagine_agent.config import Settings
from imagine_agent.devnet import Devnet
from imagine_agent.errors import ConfigurationError, PaymentError, PaymentStateUnknownError
from imagine_agent.ledger import Caps, PaymentState, open_ledger
from imagine_agent.sandbox import SandboxConfig, SandboxServer
from imagine_agent.sandbox.config import IMAGINE_PAY_TO
from imagine_agent.service import ImagineService
from imagine_agent.wallet import PaymentPolicy, Wallet
from imagine_agent.x402 import PrivateKeySigner

__all__ = ["CHAIN_ROWS", "ChainResult", "run_chain_row"]

PRICE = 1_000_000
CHAIN_ROWS = (
    ("paid generation", "sync", "completed; exactly the price moved, ledger has the tx hash"),
    ("paid generation", "async", "completed; exactly the price moved, ledger has the tx hash"),
    ("answer dropped after on-chain settlement", "sync", "same header re-sent, settled once on chain"),
    ("wrong-chain RPC during reconcile", "sync", "error, nothing released; the right chain then proves it paid"),
    # issue 22 (b): with an RPC the chain decides, not the clock
    (
        "settled, then called a bad signature twice; asked again past validBefore",
        "sync",
        "not paid again past the cap; reconcile on its own proves it paid",
    ),
)
LIAR = {
    "kind": "payment_required_after_settle",
    "params": {"error": "invalid_exact_evm_payload_signature"},
    "times": -1,
}


@dataclass
class ChainResult:
    name: str
    client: str
    expected: str
    moved: int = 0
    settled: int = 0
    ledger: str = ""
    lost: int = 0
    double_paid: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _used_logs(net: Devnet, payer: str) -> int:
    topic = "0x" + payer.lower().removeprefix("0x").rjust(64, "0")
    logs = net.rpc(
        "eth_getLogs",
        [{"address": net.network.usdc, "fromBlock": "0x0", "toBlock": "latest", "topics": [AUTHORIZATION_USED, topic]}],
    )
    return len(logs)


def run_chain_row(name: str, client: str, expected: str, workdir: Path) -> ChainResult:
    result = ChainResult(name, client, expected)
    started = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    with Devnet(payers=1) as net:
        payer = net.payers[0]
        liar = name.startswith("settled, then called")
        config = SandboxConfig(
            speed=600,
            rpc_url=net.rpc_url,
            relayer_key=net.relayer.private_key,
            idempotent_replay=not name.startswith("wrong-chain"),
            max_timeout_seconds=8 if liar else 60,
        )
        before = net.balance(payer.address), net.balance(IMAGINE_PAY_TO)
        with SandboxServer(config) as server:
            settings = Settings(
                base_url=server.url,
                private_key=payer.private_key,
                data_dir=workdir,
                poll_first=0.02,
                poll_floor=0.02,
                poll_cap=0.2,
                rpc_url=net.rpc_url,
                daily_cap=Decimal("1.5"),
            )
            with ImagineService.create(settings) as service:
                if client == "async":
                    ledger = open_ledger(workdir / "async.sqlite3")
                    wallet = Wallet(
                        PrivateKeySigner(payer.private_key),
                        ledger,
                        PaymentPolicy(caps=Caps(per_call=5_000_000, daily=None, total=None)),
                    )

                    async def pay() -> None:
                        async with AsyncImagineClient(server.url, wallet=wallet) as aclient:
                            await aclient.create("a reliability row on chain")

                    asyncio.run(pay())
                    records = ledger.payments()
                    ledger.close()
                elif name.startswith("answer dropped"):
                    server.state.add_faults({"kind": "drop_after_payment"})
                    service.generate("a reliability row on chain", wait=False)
                    records = service.receipts()
                elif liar:
                    server.state.add_faults(LIAR)
                    for attempt in range(2):
                        try:
                            service.generate("a reliability row on chain", wait=False)
                            result.problems.append(f"attempt {attempt + 1} did not end in an error")
                        except PaymentError:
                            pass
                        if attempt == 0:  # let the local clock pass validBefore: it must free nothing
                            (first,) = service.receipts()
                            time.sleep(max(0.0, (first.valid_before or 0) - time.time() + 1.5))
                    records = service.receipts()
                elif name.startswith("wrong-chain"):
                    server.state.add_faults({"kind": "error_after_settle"})
                    try:
                        service.generate("a reliability row on chain", wait=False)
                        result.problems.append("the lost answer did not end unknown")
                    except PaymentStateUnknownError:
                        pass
                    with Devnet("base-sepolia", payers=0) as wrong:
                        service.settings.rpc_url = wrong.rpc_url
                        try:
                            service.reconcile()
                            result.problems.append("reconcile read a wrong-chain RPC without an error")
                        except ConfigurationError:
                            pass
                    if [r.state for r in service.receipts()] != [PaymentState.UNKNOWN]:
                        result.problems.append("the wrong chain changed the ledger")
                    service.settings.rpc_url = net.rpc_url
                    service.reconcile()
                    records = service.receipts()
                else:
                    service.generate("a reliability row on chain", wait=False)
                    records = service.receipts()
        result.moved = before[0] - net.balance(payer.address)
        if net.balance(IMAGINE_PAY_TO) - before[1] != result.moved:
            result.problems.append("the payee did not receive what the payer lost")
        result.settled = _used_logs(net, payer.address)
    result.ledger = ", ".join(r.state.value for r in records)
    counted = [r for r in records if r.state in (PaymentState.PAID, PaymentState.UNKNOWN)]
    result.lost = max(0, result.settled - len(counted))
    result.double_paid = max(0, result.settled - 1)
    if result.moved != PRICE * result.settled or result.settled != 1:
        result.problems.append(f"moved {result.moved} in {result.settled} settlements, expected one of {PRICE}")
    if [r.state for r in records] != [PaymentState.PAID] or not (records and records[0].transaction):
        result.problems.append(f"ledger {result.ledger!r}, expected one paid payment with its tx hash")
    result.seconds = time.perf_counter() - started
    return result
