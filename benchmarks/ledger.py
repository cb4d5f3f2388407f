"""6. Ledger: payments per second, with the caps enforced, on SQLite (8 processes) and PostgreSQL (32 connections).

PostgreSQL's 32 connections are 4 processes of 8 threads (so the GIL of one process does not decide
the result). A payment here is the whole bookkeeping of one paid request through ``Wallet``: policy, reserve
(the cap check and the reservation in one locked transaction), sign, journal the header, mark it paid.
Every payer races against one total cap that admits exactly ``admit`` payments; the run ends when the
cap refuses everyone, and the ledger must then hold exactly ``admit`` paid payments. Baseline: the
same engine, one payer, one at a time. SQLite runs with ``synchronous=FULL`` (an fsync per commit);
the throwaway PostgreSQL of ``.ci/postgres.sh`` runs with fsync off, so its absolute rate is optimistic.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from imagine_agent.errors import BudgetExceededError
from imagine_agent.ledger import Caps, Ledger, PaymentState, open_ledger
from imagine_agent.wallet import PaymentPolicy, Wallet
from imagine_agent.x402 import PrivateKeySigner, parse_payment_required

from .common import REPO, Row, log, ratio_row, sized, skipped

SECTION = "6. ledger"
PRICE = 1_000_000
RESOURCE = "https://eliza.getimagine.club/generation/create"
POSTGRES_ENV = "IMAGINE_TEST_POSTGRES_URL"


def _caps(admit: int) -> Caps:
    return Caps(per_call=PRICE, total=admit * PRICE)


def _pay_until_refused(ledger: Ledger, caps: Caps, tag: str) -> int:
    """Pay (reserve → sign → journal → paid) until the total cap refuses; returns how many were paid."""
    wallet = Wallet(PrivateKeySigner.generate(), ledger, PaymentPolicy(caps=caps))
    required = parse_payment_required((REPO / "tests" / "payment-required.json").read_bytes())
    paid = 0
    while True:
        try:
            auth = wallet.authorize(required, resource_url=RESOURCE, request_hash=f"{tag}-{paid}")
        except BudgetExceededError:
            return paid
        wallet.settled(auth, task_id=f"{tag}-{paid}", receipt=None)
        paid += 1


def _process_payers(url: str, admit: int, threads: int, ready: Any, start: Any, out: Any, index: int) -> None:
    """One racing process: ``threads`` payers on one ledger (so one connection each), after ``start``."""
    ledger = open_ledger(url)
    ready.put(index)
    start.wait()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        paid = sum(pool.map(lambda t: _pay_until_refused(ledger, _caps(admit), f"p{index}t{t}"), range(threads)))
    out.put(json.dumps({"paid": paid, "done": time.time()}))
    ledger.close()


def _check(url: str, admit: int) -> bool:
    """Exactly ``admit`` payments, all paid, and nothing left under the cap."""
    with open_ledger(url) as ledger:
        paid = ledger.payments(states=[PaymentState.PAID])
        return len(ledger.payments()) == len(paid) == admit and ledger.totals(_caps(admit)).remaining_total == 0


def _sequential(url: str, admit: int) -> float:
    with open_ledger(url) as ledger:
        start = time.perf_counter()
        paid = _pay_until_refused(ledger, _caps(admit), "seq")
        elapsed = time.perf_counter() - start
    assert paid == admit, (paid, admit)
    return admit / elapsed


def race(url: str, admit: int, processes: int, threads: int) -> tuple[float, bool]:
    """``processes`` x ``threads`` payers racing for a cap of ``admit``; payments/s and whether it held."""
    open_ledger(url).close()  # created and migrated before the race
    ctx = mp.get_context("spawn")
    ready, start, out = ctx.Queue(), ctx.Event(), ctx.Queue()
    args = (url, admit, threads, ready, start, out)
    workers = [ctx.Process(target=_process_payers, args=(*args, i)) for i in range(processes)]
    for w in workers:
        w.start()
    for _ in workers:  # every process has imported and opened the ledger
        ready.get(timeout=120)
    began = time.time()
    start.set()
    results = [json.loads(out.get(timeout=300)) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    elapsed = max(r["done"] for r in results) - began
    total = sum(r["paid"] for r in results)
    return total / elapsed, total == admit and _check(url, admit)


def sqlite_processes(processes: int, admit: int) -> tuple[float, bool]:
    with tempfile.TemporaryDirectory(prefix="imagine-bench-") as tmp:
        return race(str(Path(tmp) / "shared.sqlite3"), admit, processes, 1)


def sqlite_sequential(admit: int) -> float:
    with tempfile.TemporaryDirectory(prefix="imagine-bench-") as tmp:
        return _sequential(str(Path(tmp) / "one.sqlite3"), admit)


@contextmanager
def temporary_database(server_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server, dropped afterwards."""
    import psycopg

    name = f"imagine_bench_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield urlsplit(server_url)._replace(path="/" + name).geturl()
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def postgres_connections(server_url: str, processes: int, threads: int, admit: int) -> tuple[float, bool]:
    with temporary_database(server_url) as url:
        return race(url, admit, processes, threads)


def postgres_sequential(server_url: str, admit: int) -> float:
    with temporary_database(server_url) as url:
        return _sequential(url, admit)


def run(quick: bool) -> list[Row]:
    rows: list[Row] = []
    # Tiny: two racers are still a race, and each spawned racer costs a process start.
    sq_admit, sq_seq, sq_procs = sized(quick, (400, 120, 8), (160, 60, 8), (8, 4, 2))
    base = sqlite_sequential(sq_seq)
    rate, ok = sqlite_processes(sq_procs, sq_admit)
    log(f"  SQLite: {sq_procs} processes {rate:.0f} payments/s, 1 payer {base:.0f}/s; cap held exactly: {ok}")
    rows.append(
        ratio_row(
            SECTION,
            f"SQLite, {sq_procs} processes: payments/s",
            rate,
            "/s",
            "1 payer, sequential",
            base,
            note=f"cap admitted exactly {sq_admit}: {'yes' if ok else 'NO'}; synchronous=FULL",
        )
    )
    if not ok:
        rows[-1].met = False
    server = os.environ.get(POSTGRES_ENV, "").strip()
    if not server:
        rows.append(
            skipped(SECTION, "PostgreSQL, 32 connections", f'set {POSTGRES_ENV}: eval "$(bash .ci/postgres.sh)"')
        )
        return rows
    try:
        import psycopg  # noqa: F401
    except ImportError:
        rows.append(
            skipped(SECTION, "PostgreSQL, 32 connections", "psycopg is not installed: pip install -e '.[postgres]'")
        )
        return rows
    pg_admit, pg_seq, pg_procs = sized(quick, (2000, 300, 4), (640, 100, 4), (8, 4, 2))
    base = postgres_sequential(server, pg_seq)
    rate, ok = postgres_connections(server, pg_procs, 8, pg_admit)
    log(f"  PostgreSQL: {pg_procs * 8} connections {rate:.0f} payments/s, 1 payer {base:.0f}/s; cap held exactly: {ok}")
    rows.append(
        ratio_row(
            SECTION,
            f"PostgreSQL, {pg_procs * 8} connections ({pg_procs} processes x 8): payments/s",
            rate,
            "/s",
            "1 payer, sequential",
            base,
            note=f"cap admitted exactly {pg_admit}: {'yes' if ok else 'NO'}; test server (fsync off)",
        )
    )
    if not ok:
        rows[-1].met = False
    return rows
