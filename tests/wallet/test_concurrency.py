"""Money-safety rule 2 under contention: many payers, one ledger, one cap — exactly N signatures.

8 OS processes on one SQLite file, and 32 async tasks on one PostgreSQL database, each running the
real wallet path (policy → reserve → sign → journal) against the spec's 402 body.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
from pathlib import Path

import pytest

from imagine_agent.errors import BudgetExceededError
from imagine_agent.ledger import PaymentState, open_ledger
from imagine_agent.wallet import PaymentPolicy, Wallet
from imagine_agent.x402 import PrivateKeySigner, decode_payment_header, parse_payment_required
from tests.pg import postgres_server, postgres_url  # noqa: F401  (fixtures)

from ..spec import SPEC_402
from .payer_process import ADMITS, CAPS, PRICE, URL, pay_many


def test_eight_processes_one_sqlite_ledger(tmp_path: Path) -> None:
    url = str(tmp_path / "shared.sqlite3")
    open_ledger(url).close()
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=pay_many, args=(url, 5, start, out)) for _ in range(8)]
    for p in procs:
        p.start()
    start.set()
    results = [json.loads(out.get(timeout=120)) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    headers = [h for r in results for h in r["headers"]]
    assert len(headers) == ADMITS
    assert sum(r["refused"] for r in results) == 8 * 5 - ADMITS
    assert len({decode_payment_header(h).payload.authorization.nonce for h in headers}) == ADMITS
    with open_ledger(url) as ledger:
        live = ledger.payments(states=[PaymentState.RESERVED])
        assert len(live) == ADMITS and sum(p.amount for p in live) == ADMITS * PRICE
        assert ledger.totals(CAPS).remaining_total == 0


@pytest.mark.postgres
async def test_thirty_two_tasks_one_postgres_ledger(postgres_url: str) -> None:  # noqa: F811
    ledger = open_ledger(postgres_url)
    required = parse_payment_required(SPEC_402)
    wallets = [Wallet(PrivateKeySigner.generate(), ledger, PaymentPolicy(caps=CAPS)) for _ in range(32)]

    async def pay(i: int, wallet: Wallet) -> str | None:
        try:
            auth = await asyncio.to_thread(wallet.authorize, required, resource_url=URL, request_hash=f"r{i}")
        except BudgetExceededError:
            return None
        return auth.header

    try:
        headers = [h for h in await asyncio.gather(*(pay(i, w) for i, w in enumerate(wallets))) if h]
        assert len(headers) == ADMITS
        assert sum(p.amount for p in ledger.payments()) == ADMITS * PRICE
        assert ledger.totals(CAPS).remaining_total == 0
    finally:
        ledger.close()
