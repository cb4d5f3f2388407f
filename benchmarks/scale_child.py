"""One scale run in a fresh process (so peak RSS is this run's alone): N paid jobs in flight at once.

``python -m benchmarks.scale_child --url URL --jobs N --speed S`` creates N jobs through a paying
``AsyncImagineClient`` (SQLite ledger), waits for all of them with the default poll policy scaled to
the sandbox's speed, and prints one JSON object: peak RSS, client CPU per job, event-loop lag, peak
jobs in flight, requests per job, and the CPU one bare httpx request costs in this same process.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from imagine_agent.client import POOL_LIMITS, AsyncImagineClient
from imagine_agent.polling import PollPolicy

from .harness import open_wallet

LOOP_TICK = 0.01


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    """VmHWM: this process image's peak RSS. (getrusage's ru_maxrss survives exec, so a child forked
    from a big parent would report the parent's size.)"""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def bare_httpx_cpu(url: str, requests: int) -> float:
    """CPU seconds per request of plain httpx (same pool limits), the floor under any client."""
    async with httpx.AsyncClient(timeout=30, limits=POOL_LIMITS) as http:
        semaphore = asyncio.Semaphore(20)

        async def one() -> None:
            async with semaphore:
                (await http.get(f"{url}/supported")).raise_for_status()

        await asyncio.gather(*(one() for _ in range(20)))  # open the connections
        start = time.process_time()
        await asyncio.gather(*(one() for _ in range(requests)))
        return (time.process_time() - start) / requests


def _p99(ordered: list[float]) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def loop_lag(samples: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(LOOP_TICK)
        samples.append(time.perf_counter() - start - LOOP_TICK)


async def main(url: str, jobs: int, speed: float, create_concurrency: int) -> dict[str, Any]:
    bare_cpu = await bare_httpx_cpu(url, 400)
    counts = {"create": 0, "status": 0}

    async def on_request(request: httpx.Request) -> None:
        counts["status" if request.url.path.endswith("/status") else "create"] += 1

    with tempfile.TemporaryDirectory(prefix="imagine-bench-") as tmp:
        wallet, ledger = open_wallet(Path(tmp))
        http = httpx.AsyncClient(timeout=30, limits=POOL_LIMITS, event_hooks={"request": [on_request]})
        async with AsyncImagineClient(url, wallet=wallet, http_client=http, poll=PollPolicy().scaled(speed)) as client:
            await client.create("warm-up video", duration=8)  # first-use costs (schemas, connections) paid here
            counts.update(create=0, status=0)
            idle_rss = rss_mb()
            in_flight = peak_in_flight = created = 0
            last_created = 0.0
            failures: list[str] = []
            semaphore = asyncio.Semaphore(create_concurrency)

            async def one(i: int) -> None:
                nonlocal in_flight, peak_in_flight, created, last_created
                try:
                    async with semaphore:
                        job = await client.create(f"scale video {i}: waves on a basalt shore", duration=8)
                    created += 1
                    last_created = time.perf_counter()
                    in_flight += 1
                    peak_in_flight = max(peak_in_flight, in_flight)
                    try:
                        await job.wait(timeout=900 / speed)
                    finally:
                        in_flight -= 1
                except Exception as exc:  # counted and reported, never hidden
                    failures.append(f"{type(exc).__name__}: {exc}"[:200])

            idle_lags: list[float] = []  # the machine's own scheduling noise, the baseline for loop lag
            stop = asyncio.Event()
            monitor = asyncio.create_task(loop_lag(idle_lags, stop))
            await asyncio.sleep(1.0)
            stop.set()
            await monitor
            lags: list[float] = []
            stop = asyncio.Event()
            monitor = asyncio.create_task(loop_lag(lags, stop))
            wall, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(one(i) for i in range(jobs)))
            creating = last_created - wall
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            stop.set()
            await monitor
        # Every failure accounted for in the ledger: each payment's state and reason, by state.
        states = collections.Counter(f"{r.state.value}: {r.reason or 'no reason'}"[:160] for r in ledger.payments())
        ledger.close()
        await http.aclose()
    lags.sort()
    idle_lags.sort()
    return {
        "jobs": jobs,
        "speed": speed,
        "failures": len(failures),
        "failure_examples": failures[:3],
        "failure_kinds": dict(collections.Counter(failures).most_common(10)),
        "ledger_states": dict(states.most_common(10)),
        "peak_in_flight": peak_in_flight,
        "wall_s": wall,
        "creation_s": creating,
        "creates_per_s": created / creating if creating > 0 else 0.0,
        "cpu_s": cpu,
        "cpu_per_job_ms": cpu / jobs * 1e3,
        "requests_per_job": (counts["create"] + counts["status"]) / jobs,
        "status_per_job": counts["status"] / jobs,
        "bare_httpx_cpu_per_request_ms": bare_cpu * 1e3,
        "idle_rss_mb": idle_rss,
        "peak_rss_mb": peak_rss_mb(),
        "loop_lag_p50_ms": statistics.median(lags) * 1e3,
        "loop_lag_p99_ms": _p99(lags) * 1e3,
        "loop_lag_max_ms": lags[-1] * 1e3,
        "idle_loop_lag_p99_ms": _p99(idle_lags) * 1e3,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--speed", type=float, required=True)
    parser.add_argument("--create-concurrency", type=int, default=50)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.url, args.jobs, args.speed, args.create_concurrency))))
