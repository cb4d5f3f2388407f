"""3. Scale: 100, 1,000 and 5,000 paid jobs in flight in one async process.

Each size runs in a fresh child process (``benchmarks.scale_child``) against the sandbox in another
(``benchmarks.sandbox_child``), so peak RSS is that run's alone and the server's CPU is not counted
as the client's. Jobs are drawn from 60–90 s here, with the sandbox's speed chosen per size so the
first jobs are still running when the last is created (creation is bound by the SQLite ledger's
fsyncs, about a hundred payments a second, so each size's speed comes from the creation rate the
previous size measured). Baseline for CPU: what the same number of bare httpx requests costs in the
same process; for RSS, the client's own RSS before the jobs; for loop lag, the same loop idle.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from .common import REPO, Row, child_env, log, sized
from .sandbox_child import sandbox_process

SECTION = "3. scale"
FIRST_SPEED = 20.0  # 100 jobs are created in about a second
SPEED_RANGE = (0.3, 8.0)
JOB_SECONDS = (60.0, 90.0)
RSS_LIMIT_MB = 300.0


def speed_for(jobs: int, creates_per_s: float, margin: float) -> float:
    """A time scale at which the shortest job (60 s) outlasts creating ``jobs`` at the measured rate
    times ``margin`` (creation slows as more jobs are polled meanwhile)."""
    creating = margin * jobs / creates_per_s
    low, high = SPEED_RANGE
    return max(low, min(high, JOB_SECONDS[0] / creating))


def run_size(jobs: int, speed: float) -> dict[str, Any]:
    with sandbox_process(speed, job_seconds=JOB_SECONDS) as url:
        argv = [
            sys.executable,
            "-m",
            "benchmarks.scale_child",
            "--url",
            url,
            "--jobs",
            str(jobs),
            "--speed",
            str(speed),
        ]
        result = subprocess.run(argv, capture_output=True, text=True, env=child_env(), cwd=REPO, timeout=1200)
    if result.returncode != 0:
        where = [line for line in result.stderr.splitlines() if "benchmarks/" in line or "imagine_agent/" in line]
        raise RuntimeError(f"scale run of {jobs} jobs failed: {' | '.join(where[-6:])} {result.stderr[-600:]}")
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def rows_for(d: dict[str, Any]) -> list[Row]:
    jobs = d["jobs"]
    floor_ms = d["requests_per_job"] * d["bare_httpx_cpu_per_request_ms"]
    overhead = d["cpu_per_job_ms"] / floor_ms
    in_flight = f"peak {d['peak_in_flight']} in flight at speed {d['speed']:.2g}, {d['failures']} failed"
    lag = (
        f"loop lag p50 {d['loop_lag_p50_ms']:.1f} / p99 {d['loop_lag_p99_ms']:.1f} / max {d['loop_lag_max_ms']:.0f} ms"
    )
    rss = Row(
        SECTION,
        f"{jobs} jobs: peak RSS of the client",
        d["peak_rss_mb"],
        "MB",
        "client RSS before the jobs",
        d["idle_rss_mb"],
        d["peak_rss_mb"] / d["idle_rss_mb"],
        f"< {RSS_LIMIT_MB:g} MB" if jobs == 1000 else "",
        (d["peak_rss_mb"] < RSS_LIMIT_MB) if jobs == 1000 else None,
        f"{in_flight}; {lag}",
        extra=d,
    )
    cpu = Row(
        SECTION,
        f"{jobs} jobs: client CPU per job",
        d["cpu_per_job_ms"],
        "ms",
        f"{d['requests_per_job']:.1f} bare httpx requests",
        floor_ms,
        overhead,
        "",
        None,
        f"ratio to the same number of bare httpx requests (what a job's HTTP costs anyway); one costs "
        f"{d['bare_httpx_cpu_per_request_ms']:.2f} ms CPU here; {d['failures']} failed",
    )
    return [rss, cpu]


def run(quick: bool) -> list[Row]:
    rows: list[Row] = []
    speed = FIRST_SPEED
    for jobs in sized(quick, (100, 1000, 5000), (100, 1000), (20,)):
        d = run_size(jobs, speed)
        # The next size's speed, from this run's creation rate: 10x the jobs creates about half as fast
        # (they are polled meanwhile), 5x about 15 % slower.
        following = {100: (1000, 2.0), 1000: (5000, 1.4)}.get(jobs)
        if following is not None:
            speed = speed_for(following[0], d["creates_per_s"], following[1])
        log(
            f"  {jobs} jobs: peak RSS {d['peak_rss_mb']:.0f} MB, CPU {d['cpu_per_job_ms']:.1f} ms/job "
            f"({d['requests_per_job']:.1f} requests/job, "
            f"bare httpx {d['bare_httpx_cpu_per_request_ms']:.2f} ms/request), "
            f"loop lag p99 {d['loop_lag_p99_ms']:.1f} ms, peak in flight {d['peak_in_flight']}, "
            f"{d['failures']} failed, {d['wall_s']:.0f} s"
        )
        rows += rows_for(d)
    if quick:
        rows.append(Row(SECTION, "5000 jobs", None, "", note="skipped in --quick"))
    return rows
