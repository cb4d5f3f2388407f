"""Load: many concurrent paid generations against one time-scaled sandbox running in its own process.

Each side runs in its own OS process so CPU and memory belong to the client alone:

    python -m tests.reliability.load serve SPEED           # prints its URL, serves until terminated
    python -m tests.reliability.load client URL LEDGER JOBS SPEED [--total-cap N] [--go FILE]

``single_process`` runs one client with ``profile.load_jobs`` concurrent generations (AsyncImagineClient +
Wallet + SQLite ledger); ``shared_budget`` runs ``profile.processes`` clients on one SQLite ledger whose
total cap admits only ``profile.admitted`` payments. Both audit the sandbox's settlements (read over
``GET /_admin/settlements``) against the ledger.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from imagine_agent.errors import BudgetExceededError, ImagineError
from imagine_agent.ledger import Caps, PaymentState, open_ledger
from imagine_agent.polling import PollPolicy

from .audit import count_double_paid, count_lost, count_phantom
from .profile import Profile

__all__ = ["ClientReport", "LoadReport", "sandbox_process", "shared_budget", "single_process"]

ROOT = Path(__file__).resolve().parents[2]
DURATION = 2  # seconds of video per job
PRICE = 250_000  # what the sandbox charges for DURATION seconds (atomic USDC)
JOB_TIMEOUT = 300.0


# ---------------------------------------------------------------------------------------- the client


def _memory_kib(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process. Not ``getrusage``'s ru_maxrss: Linux carries
    that over exec from the forking parent, so a child of pytest would report pytest's peak."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


async def _client(
    url: str, ledger_path: str, jobs: int, speed: float, total_cap: int | None, go: str | None
) -> dict[str, Any]:
    from imagine_agent.client import AsyncImagineClient
    from imagine_agent.wallet import PaymentPolicy, Wallet
    from imagine_agent.x402 import PrivateKeySigner

    caps = Caps(per_call=5_000_000, daily=None, total=total_cap, rate_per_minute=None)
    ledger = open_ledger(ledger_path)
    wallet = Wallet(PrivateKeySigner.generate(), ledger, PaymentPolicy(caps=caps))
    outcomes: Counter[str] = Counter()
    task_ids: list[str] = []
    async with AsyncImagineClient(url, wallet=wallet, poll=PollPolicy().scaled(speed), timeout=120.0) as client:

        async def one(i: int) -> None:
            try:
                job = await client.create(f"load video {os.getpid()}-{i}", duration=DURATION)
                task_ids.append(job.task_id)
                status = await job.wait(timeout=JOB_TIMEOUT)
                outcomes[status.status] += 1
            except BudgetExceededError:
                outcomes["refused"] += 1
            except ImagineError as exc:
                outcomes[type(exc).__name__] += 1

        while go is not None and not os.path.exists(go):
            await asyncio.sleep(0.005)
        rss_start = _memory_kib("VmRSS")
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(jobs)))
        cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start
    ledger.close()
    peak = _memory_kib("VmHWM")
    return {
        "jobs": jobs,
        "outcomes": dict(outcomes),
        "taskIds": task_ids,
        "cpu": cpu,
        "wall": wall,
        "rssStartKib": rss_start,
        "rssPeakKib": peak,
    }


def _serve(speed: float) -> None:
    from imagine_agent.sandbox import SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig(announce_sandbox=False, speed=speed)) as server:
        print(server.url, flush=True)
        threading.Event().wait()  # until terminated


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.load")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("speed", type=float)
    client = sub.add_parser("client")
    client.add_argument("url")
    client.add_argument("ledger")
    client.add_argument("jobs", type=int)
    client.add_argument("speed", type=float)
    client.add_argument("--total-cap", type=int, default=None)
    client.add_argument("--go", default=None)
    args = parser.parse_args(argv)
    if args.command == "serve":
        _serve(args.speed)
    else:
        report = asyncio.run(_client(args.url, args.ledger, args.jobs, args.speed, args.total_cap, args.go))
        print(json.dumps(report), flush=True)


# ---------------------------------------------------------------------------------------- the parent


def _python(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.load", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextmanager
def sandbox_process(speed: float) -> Iterator[str]:
    """A sandbox server in its own process (real uvicorn); yields its URL."""
    proc = _python("serve", str(speed))
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"the sandbox process did not start: {proc.stderr.read() if proc.stderr else ''}")
        yield url
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


@dataclass(frozen=True)
class ClientReport:
    """One client process: what its jobs ended as, and what they cost it."""

    jobs: int
    outcomes: dict[str, int]
    task_ids: list[str]
    cpu: float  # seconds of CPU (user + system, all threads) while the jobs ran
    wall: float
    rss_start_kib: int
    rss_peak_kib: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClientReport:
        return cls(
            data["jobs"],
            data["outcomes"],
            data["taskIds"],
            data["cpu"],
            data["wall"],
            data["rssStartKib"],
            data["rssPeakKib"],
        )


@dataclass
class LoadReport:
    """A load run, audited against the sandbox's settlement record."""

    processes: int
    attempted: int
    cap: int | None  # payments the shared budget admits; None: no cap
    clients: list[ClientReport]
    settled: int
    ledger_paid: int
    ledger_other: dict[str, int]
    double_paid: int
    lost: int
    phantom: int
    wall: float
    problems: list[str] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(c.outcomes.get(outcome, 0) for c in self.clients)

    @property
    def completed(self) -> int:
        return self.count("completed")

    @property
    def refused(self) -> int:
        return self.count("refused")

    @property
    def cpu_ms_per_job(self) -> float:
        return 1000 * sum(c.cpu for c in self.clients) / max(1, self.completed)

    @property
    def peak_rss_mib(self) -> float:
        return max(c.rss_peak_kib for c in self.clients) / 1024

    @property
    def rss_growth_kib_per_job(self) -> float:
        grown = sum(max(0, c.rss_peak_kib - c.rss_start_kib) for c in self.clients)
        return grown / max(1, self.completed)


def _run_clients(
    url: str, ledger: Path, jobs: list[int], speed: float, total_cap: int | None, workdir: Path
) -> list[ClientReport]:
    go = workdir / "go"
    extra = [] if total_cap is None else ["--total-cap", str(total_cap)]
    procs = [_python("client", url, str(ledger), str(n), str(speed), "--go", str(go), *extra) for n in jobs]
    time.sleep(0.2)
    go.touch()  # every client is set up: start paying together
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=JOB_TIMEOUT + 120)
        if proc.returncode != 0:
            raise RuntimeError(f"a load client failed ({proc.returncode}): {err[-3000:]}")
        reports.append(ClientReport.from_json(json.loads(out.strip().splitlines()[-1])))
    return reports


def _audit(url: str, ledger_path: Path, clients: list[ClientReport], cap: int | None, wall: float) -> LoadReport:
    settlements = httpx.get(url + "/_admin/settlements", timeout=30).json()
    with open_ledger(ledger_path) as ledger:
        payments = ledger.payments()
    states = Counter(p.state.value for p in payments)
    report = LoadReport(
        processes=len(clients),
        attempted=sum(c.jobs for c in clients),
        cap=cap,
        clients=clients,
        settled=len(settlements),
        ledger_paid=states.pop(PaymentState.PAID.value, 0),
        ledger_other=dict(states),
        double_paid=count_double_paid(settlements),
        lost=count_lost(settlements, payments),
        phantom=count_phantom(settlements, payments),
        wall=wall,
    )
    expected = report.attempted if cap is None else min(cap, report.attempted)
    checks = {
        f"completed {report.completed} of {expected} admitted jobs": report.completed == expected,
        f"sandbox settled {report.settled}, ledger paid {report.ledger_paid}": report.settled == report.ledger_paid,
        f"settled {report.settled} payments, expected {expected}": report.settled == expected,
        f"ledger holds non-paid payments {report.ledger_other}": not report.ledger_other,
        f"{report.double_paid} requests paid twice": report.double_paid == 0,
        f"{report.lost} settled payments missing from the ledger": report.lost == 0,
        f"{report.phantom} ledger payments never settled": report.phantom == 0,
        f"refused {report.refused}, expected {report.attempted - expected}": report.refused
        == report.attempted - expected,
        f"other outcomes {[c.outcomes for c in clients]}": report.completed + report.refused == report.attempted,
    }
    if cap is not None:
        checks[f"settled {report.settled} over the cap of {cap}"] = report.settled <= cap
    report.problems = [message for message, ok in checks.items() if not ok]
    return report


def single_process(profile: Profile, workdir: Path) -> LoadReport:
    """``profile.load_jobs`` concurrent generations from one async process."""
    workdir.mkdir(parents=True, exist_ok=True)
    ledger = workdir / "ledger.sqlite3"
    open_ledger(ledger).close()
    with sandbox_process(profile.speed) as url:
        started = time.perf_counter()
        clients = _run_clients(url, ledger, [profile.load_jobs], profile.speed, None, workdir)
        return _audit(url, ledger, clients, None, time.perf_counter() - started)


def shared_budget(profile: Profile, workdir: Path) -> LoadReport:
    """``profile.processes`` processes, one SQLite budget that admits ``profile.admitted`` payments."""
    workdir.mkdir(parents=True, exist_ok=True)
    ledger = workdir / "ledger.sqlite3"
    open_ledger(ledger).close()
    jobs = [profile.jobs_per_process] * profile.processes
    with sandbox_process(profile.speed) as url:
        started = time.perf_counter()
        clients = _run_clients(url, ledger, jobs, profile.speed, profile.admitted * PRICE, workdir)
        return _audit(url, ledger, clients, profile.admitted, time.perf_counter() - started)


if __name__ == "__main__":
    main()
