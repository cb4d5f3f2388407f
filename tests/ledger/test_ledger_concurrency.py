"""Racing reservations: however many processes or threads share a ledger, a cap admits exactly what fits.

These are the tests of money-safety rule 2 ("concurrent processes sharing a ledger can never together
exceed a cap"). Each race lets every contender start at once against a total cap that admits exactly N.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from imagine_agent.errors import BudgetExceededError
from imagine_agent.ledger import Caps, Ledger, PaymentState, open_ledger
from tests.ledger.support import USDC, reserve

N = 5
AMOUNT = 250_000  # 0.25 USDC
CAPS = Caps(per_call=USDC, total=N * AMOUNT)
REPO = Path(__file__).resolve().parents[2]

# One racing process: open the (maybe brand-new) ledger, say ready, wait for "go", try ATTEMPTS times.
WORKER = """
import json, os, sys, time
from imagine_agent.errors import BudgetExceededError
from imagine_agent.ledger import Caps, open_ledger

path, ready, go, attempts, amount, total = sys.argv[1:7]
ledger = open_ledger(path)
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
caps = Caps(per_call=int(amount), total=int(total))
outcome = {"paid": 0, "refused": 0}
for i in range(int(attempts)):
    try:
        ledger.reserve(request_hash=f"{os.getpid()}-{i}", amount=int(amount), asset="usdc", network="base",
                       pay_to="0xpayee", payer="0xpayer", resource="https://x/generation/create", caps=caps)
        outcome["paid"] += 1
    except BudgetExceededError:
        outcome["refused"] += 1
ledger.close()
print(json.dumps(outcome))
"""


def _assert_exactly_n(ledger: Ledger, outcomes: Counter[str], attempts: int) -> None:
    assert outcomes == Counter({"paid": N, "refused": attempts - N})
    reserved = ledger.payments(states=[PaymentState.RESERVED])
    assert len(ledger.payments()) == len(reserved) == N
    assert sum(p.amount for p in reserved) == N * AMOUNT == ledger.totals(CAPS).total_used


def test_processes_sharing_one_sqlite_file_never_exceed_a_cap(tmp_path: Path) -> None:
    processes, attempts_each = 8, 5
    path, go = tmp_path / "shared.sqlite3", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    readies = [tmp_path / f"ready-{i}" for i in range(processes)]
    args = [str(attempts_each), str(AMOUNT), str(N * AMOUNT)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), str(ready), str(go), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for ready in readies
    ]
    try:
        deadline = time.monotonic() + 30
        while not all(r.exists() for r in readies):  # every process has opened (and raced to migrate)
            assert time.monotonic() < deadline, [w.poll() for w in workers]
            assert all(w.poll() is None for w in workers), [w.communicate() for w in workers if w.poll()]
            time.sleep(0.005)
        go.touch()
        outcomes: Counter[str] = Counter()
        for worker in workers:
            out, err = worker.communicate(timeout=60)
            assert worker.returncode == 0, err
            outcomes.update(json.loads(out))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    with open_ledger(path) as ledger:
        _assert_exactly_n(ledger, outcomes, processes * attempts_each)


def test_openers_racing_on_a_brand_new_sqlite_file_all_open_it(tmp_path: Path) -> None:
    """SQLite may answer the losers of the race to switch a new file to WAL "database is locked" at once, without
    waiting out the busy timeout: each opener must wait, not fail (one process of the test above once did)."""
    openers, rounds = 8, 40
    for round_ in range(rounds):
        path = tmp_path / f"new-{round_}.sqlite3"
        start = threading.Barrier(openers)
        failures: list[BaseException] = []

        def open_it(
            path: Path = path, start: threading.Barrier = start, failures: list[BaseException] = failures
        ) -> None:
            start.wait()
            try:
                open_ledger(path).close()
            except BaseException as exc:  # any failure to open is the finding
                failures.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(openers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == [], f"round {round_}: {failures[0]!r}"


async def _race(ledgers: list[Ledger], attempts: int) -> Counter[str]:
    """``attempts`` reservations at once, on real threads, spread over ``ledgers``."""
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=attempts)  # the default pool has only min(32, cpus + 4)
    loop.set_default_executor(executor)

    def attempt(i: int) -> str:
        try:
            reserve(ledgers[i % len(ledgers)], AMOUNT, caps=CAPS, request_hash=f"request-{i}")
        except BudgetExceededError:
            return "refused"
        return "paid"

    try:
        return Counter(await asyncio.gather(*(asyncio.to_thread(attempt, i) for i in range(attempts))))
    finally:
        executor.shutdown()


@pytest.mark.postgres
async def test_threads_sharing_one_postgres_ledger_never_exceed_a_cap(postgres_url: str) -> None:
    with open_ledger(postgres_url) as ledger:
        _assert_exactly_n(ledger, await _race([ledger], 32), 32)


@pytest.mark.postgres
async def test_two_postgres_ledgers_on_one_database_never_exceed_a_cap(postgres_url: str) -> None:
    # Two ledger objects with their own connections stand in for two machines of a fleet.
    with open_ledger(postgres_url) as first, open_ledger(postgres_url) as second:
        _assert_exactly_n(first, await _race([first, second], 32), 32)


async def test_threads_sharing_one_sqlite_ledger_never_exceed_a_cap(tmp_path: Path) -> None:
    with open_ledger(tmp_path / "ledger.sqlite3") as ledger:
        _assert_exactly_n(ledger, await _race([ledger], 32), 32)
