"""2. Polling: how late completion is seen, and how many status requests a job costs.

Two parts. Per progress shape (``benchmarks.shapes``): the real ``wait_flow`` on a simulated clock,
the same jobs for our schedule and for fixed 15 s and 10 s polling, with targets on every shape:
mean lag <= 0.3x fixed 15 s polling's, p95 lag <= its p95, requests per job <= its mean. Then the
sandbox run below, end to end over HTTP:

Jobs of 60–180 s (the provider's "1–3 minutes"), time-scaled: the sandbox runs ``speed`` times faster
and every policy is ``PollPolicy.scaled(speed)``; lags are reported back in real-scale seconds. Each
policy gets the same jobs (the sandbox is reset and draws durations from the same seeded sequence)
and the same client: a paying ``AsyncImagineClient`` creating the jobs and ``job.wait()``-ing on them.
The baselines are fixed-interval pollers, ``PollPolicy(first=15, floor=15, cap=15)``: the benchmark
checks from the request log that their polls really are 15 s (10 s) apart.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from imagine_agent.client import AsyncImagineClient
from imagine_agent.polling import PollPolicy

from . import common, generate_figure, shapes
from .common import REPO, Row, log, ratio_row, sized
from .harness import open_wallet
from .sandbox_child import sandbox_process

SECTION = "2. polling"
CREATE_CONCURRENCY = 20

# Why a shape cannot meet a target: the information the schedule would need is not in the readings.
WHY = {
    "ease-out": "slowing down is never aimed at: where it levels off into 99 % is hidden by whole percent; "
    "aims made before the slowing shows sometimes miss",
    "S-curve (smoothstep)": "its end levels off like ease-out's; aims made while it still speeds up sometimes miss",
    "stall at 99 % (30 % of the run)": "the aim made from the steady part lands in the unforeseeable stall "
    "(+1 request); the stall's end carries no signal (tick lag)",
    "jumps 0 -> 60 -> 100": "the jump to 100 % is unforeseeable: seen on the tick",
    "no progress field": "no information: 0.3x the tick's lag needs 0.3x its interval, 3.3x the requests (row below)",
    "progress only in metadata.percent": "TaskStatus here reads `progress` only: the same as no progress field",
    "fails midway": "a failure is not announced by progress: seen on the tick",
}

POLICIES: dict[str, PollPolicy] = {
    "ours": PollPolicy(),
    "fixed 15 s": PollPolicy(first=15, floor=15, cap=15),
    "fixed 10 s": PollPolicy(first=10, floor=10, cap=10),
}


@dataclass
class PolicyResult:
    lags: list[float]  # real-scale seconds from completion to detection, one per job
    requests: list[int]  # status requests per job
    intervals: list[float] = field(default_factory=list)  # real-scale seconds between a job's polls

    @property
    def mean_lag(self) -> float:
        return statistics.fmean(self.lags)

    @property
    def mean_requests(self) -> float:
        return statistics.fmean(self.requests)


async def run_policy(url: str, policy: PollPolicy, *, speed: float, jobs: int, workdir: Path) -> PolicyResult:
    polls: dict[str, list[float]] = defaultdict(list)

    async def on_request(request: httpx.Request) -> None:
        parts = request.url.path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "generation" and parts[2] == "status":
            polls[parts[1]].append(time.time())

    async with httpx.AsyncClient(base_url=url, timeout=30) as admin:
        (await admin.post("/_admin/reset")).raise_for_status()  # same seeded durations for every policy
    wallet, ledger = open_wallet(workdir)
    http = httpx.AsyncClient(timeout=30, event_hooks={"request": [on_request]})
    detected: dict[str, float] = {}
    semaphore = asyncio.Semaphore(CREATE_CONCURRENCY)
    try:
        async with AsyncImagineClient(url, wallet=wallet, http_client=http, poll=policy.scaled(speed)) as client:

            async def one(i: int) -> None:
                async with semaphore:
                    job = await client.create(f"benchmark video {i}: a lighthouse at dusk", duration=8)
                await job.wait(timeout=600 / speed)
                detected[job.task_id] = time.time()

            await asyncio.gather(*(one(i) for i in range(jobs)))
        async with httpx.AsyncClient(base_url=url, timeout=30) as admin:
            lags, requests, intervals = [], [], []
            for task_id, seen in detected.items():
                info: dict[str, Any] = (await admin.get(f"/_bench/jobs/{task_id}")).json()
                completed = info["createdAt"] + info["runSeconds"]
                lags.append((seen - completed) * speed)
                requests.append(len(polls[task_id]))
                times = polls[task_id]
                intervals += [(b - a) * speed for a, b in itertools.pairwise(times)]
    finally:
        await http.aclose()
        ledger.close()
    return PolicyResult(lags, requests, intervals)


async def _run_all(speed: float, jobs: int) -> dict[str, PolicyResult]:
    results: dict[str, PolicyResult] = {}
    with sandbox_process(speed) as url, tempfile.TemporaryDirectory(prefix="imagine-bench-") as tmp:
        for i, (name, policy) in enumerate(POLICIES.items()):
            workdir = Path(tmp) / str(i)
            workdir.mkdir()
            results[name] = await run_policy(url, policy, speed=speed, jobs=jobs, workdir=workdir)
            r = results[name]
            log(
                f"  {name}: mean lag {r.mean_lag:.2f} s (max {max(r.lags):.1f} s), "
                f"{r.mean_requests:.2f} status requests per job (max {max(r.requests)})"
            )
    return results


def _fixed_check(result: PolicyResult, seconds: float) -> str:
    if not result.intervals:
        return "no intervals"
    worst = max(abs(i - seconds) for i in result.intervals)
    return f"polls {statistics.median(result.intervals):.2f} s apart (worst {worst:.2f} s off {seconds:g} s)"


def shape_rows(count: int) -> list[Row]:
    """One row per shape: our mean lag against fixed 15 s polling's, with p95 and requests in the note."""
    rows: list[Row] = []
    no_progress_at: dict[str, float] = {}
    for shape in shapes.SHAPES:
        jobs = shapes.jobs_for(shape, count)
        s = {name: shapes.summarize([shapes.simulate(j, p) for j in jobs]) for name, p in POLICIES.items()}
        ours, f15, f10 = s["ours"], s["fixed 15 s"], s["fixed 10 s"]
        lag_ok = ours.mean_lag <= 0.3 * f15.mean_lag
        p95_ok = ours.p95_lag <= f15.p95_lag + 1e-9
        req_ok = ours.mean_requests <= f15.mean_requests + 1e-9
        missed = [n for n, ok in (("lag", lag_ok), ("p95", p95_ok), ("requests", req_ok)) if not ok]
        note = (
            f"p95 {ours.p95_lag:.1f} s vs {f15.p95_lag:.1f} s; req/job {ours.mean_requests:.2f} vs "
            f"{f15.mean_requests:.2f} ({ours.mean_requests / f15.mean_requests:.2f}x); fixed 10 s: lag "
            f"{f10.mean_lag:.1f} s, {f10.mean_requests:.2f} req"
        )
        if missed:
            note += f"; missed {'/'.join(missed)}: {WHY.get(shape.name, 'see docs/performance.md')}"
        if shape.name == "no progress field":
            no_progress_at = {"tick": f15.mean_lag, "requests": f15.mean_requests}
        row = ratio_row(
            SECTION,
            f"shape {shape.name}: mean lag",
            ours.mean_lag,
            "s",
            "fixed 15 s polling",
            f15.mean_lag,
            0.3,
            note=note,
            extra={name: vars(v) for name, v in s.items()},
        )
        row.target = "lag <= 0.3x, p95 <= 1x, req <= 1x"
        row.met = not missed
        rows.append(row)
        log(
            f"  {shape.name}: lag {ours.mean_lag:.2f} s ({row.ratio:.2f}x), p95 {ours.p95_lag:.1f} s "
            f"(fixed {f15.p95_lag:.1f}), {ours.mean_requests:.2f} req (fixed {f15.mean_requests:.2f})"
        )
    if no_progress_at:
        # Without progress, a poller sees a completion on average half its interval late: 0.3x the
        # tick's lag needs an interval of 0.3x the tick, so (1 / 0.3) = 3.3x the requests.
        interval = 0.3 * 15.0
        blind = PollPolicy(first=interval, floor=interval, cap=interval)
        jobs = shapes.jobs_for(shapes.SHAPES[[s.name for s in shapes.SHAPES].index("no progress field")], count)
        b = shapes.summarize([shapes.simulate(j, blind) for j in jobs])
        rows.append(
            ratio_row(
                SECTION,
                "no progress: fixed 4.5 s polling (what 0.3x lag costs), requests",
                b.mean_requests,
                "req",
                "fixed 15 s polling",
                no_progress_at["requests"],
                note=f"context: lag {b.mean_lag:.2f} s = {b.mean_lag / no_progress_at['tick']:.2f}x the tick's; "
                "blind, lower lag is bought with requests only",
            )
        )
    return rows


def run(quick: bool) -> list[Row]:
    rows = shape_rows(sized(quick, 2000, 300, 8))
    rows += history_rows(sized(quick, 40, 20, 2), write=not common.TINY, learn=sized(quick, 6, 6, 2))
    rows += generate_figure.run(sized(quick, 6, 4, 2))
    # Time scaling multiplies the event loop's jitter (a reading stamped 20 ms late is 0.2 s at speed 10).
    speed, jobs = sized(quick, (10.0, 100), (30.0, 40), (120.0, 3))
    results = asyncio.run(_run_all(speed, jobs))
    ours, fixed15, fixed10 = results["ours"], results["fixed 15 s"], results["fixed 10 s"]
    setup = f"{jobs} jobs of 60-180 s at speed {speed:g}"
    check15, check10 = _fixed_check(fixed15, 15), _fixed_check(fixed10, 10)
    extra = {
        name: {
            "mean_lag_s": r.mean_lag,
            "p90_lag_s": statistics.quantiles(r.lags, n=10)[-1],
            "max_lag_s": max(r.lags),
            "mean_requests": r.mean_requests,
            "max_requests": max(r.requests),
        }
        for name, r in results.items()
    }
    return [
        *rows,
        ratio_row(
            SECTION,
            "sandbox (linear): lag completion->detection, ours",
            ours.mean_lag,
            "s",
            "fixed 15 s polling",
            fixed15.mean_lag,
            0.3,
            note=f"{setup}; baseline {check15}",
            extra=extra,
        ),
        ratio_row(
            SECTION,
            "sandbox (linear): status requests per job, ours",
            ours.mean_requests,
            "req",
            "fixed 15 s polling",
            fixed15.mean_requests,
            1.0,
            note=f"max {max(ours.requests)} per job",
        ),
        ratio_row(
            SECTION,
            "sandbox: lag, fixed 10 s polling",
            fixed10.mean_lag,
            "s",
            "fixed 15 s polling",
            fixed15.mean_lag,
            note=f"context; {check10}",
        ),
        ratio_row(
            SECTION,
            "sandbox: status requests per job, fixed 10 s",
            fixed10.mean_requests,
            "req",
            "fixed 15 s polling",
            fixed15.mean_requests,
            note="context",
        ),
    ]


# ------------------------------------------------------------------ history: per shape and render-time spread

SPREADS = (0.05, 0.15, 0.30)
CENTRES = (60.0, 120.0, 180.0)  # the provider's "1-3 minutes": one kind of job per centre
DOC = REPO / "docs" / "performance-polling.md"


@dataclass(frozen=True)
class HistoryCell:
    shape: str
    spread: float
    fixed: shapes.Summary
    progress_only: shapes.Summary
    history: shapes.Summary


def history_cells(per_kind: int, learn: int = 6) -> list[HistoryCell]:
    """Each shape x spread: jobs of one kind run in sequence (``learn`` build the history, the rest are
    measured), polled by fixed 15 s, by our schedule without history, and with it; same render times."""
    ours, fixed = POLICIES["ours"], POLICIES["fixed 15 s"]
    cells: list[HistoryCell] = []
    for shape in shapes.SHAPES:
        for spread in SPREADS:
            f, p, h = [], [], []
            for seed, centre in enumerate(CENTRES):
                jobs = shapes.spread_jobs(shape, learn + per_kind, centre=centre, spread=spread, seed=seed)
                measured = jobs[learn:]
                f += [shapes.simulate(j, fixed) for j in measured]
                p += [shapes.simulate(j, ours) for j in measured]
                h += shapes.with_history(jobs, ours, learn=learn)
            cells.append(HistoryCell(shape.name, spread, shapes.summarize(f), shapes.summarize(p), shapes.summarize(h)))
    return cells


def history_markdown(cells: list[HistoryCell], per_kind: int, command: str) -> str:
    lines = [
        "# Polling performance: progress, history and the fixed 15 s tick",
        "",
        "<!-- generated by benchmarks/polling.py (python -m benchmarks --only polling); do not edit by hand -->",
        "",
        f"Command: `{command}`. Simulated clock, the real `wait_flow` and `PollSchedule`; for each progress shape",
        "and render-time spread, jobs of one kind (one API, model and duration) run one after another with",
        f"centres {', '.join(f'{c:g}' for c in CENTRES)} s. Six jobs of each kind build the history (brackets of",
        f"last-seen-unfinished and first-seen-done, as the ledger records them); the next {per_kind} of each are",
        "measured, and each of them joins the history in turn. The same render times go to fixed 15 s polling,",
        "to our schedule without history (progress only) and to it with history.",
        "",
        "Lag: seconds from the job's end (completion or failure) to the poll that sees it. Requests: status",
        "reads per job, as a ratio to fixed polling's. Targets: mean lag <= 0.3x fixed, p95 <= fixed's p95,",
        "requests <= 1.1x. The other benchmarks, and how this schedule works: [Performance](performance.md).",
        "",
        "| shape | spread | fixed 15 s: mean / p95 lag, req/job | progress only: mean (ratio) / p95, req | "
        "with history: mean (ratio) / p95, req | met |",
        "|---|---|---|---|---|---|",
    ]
    for c in cells:
        fx, po, hi = c.fixed, c.progress_only, c.history
        met = (
            hi.mean_lag <= 0.3 * fx.mean_lag + 1e-9
            and hi.p95_lag <= fx.p95_lag + 1e-9
            and hi.mean_requests <= 1.1 * fx.mean_requests + 1e-9
        )
        lines.append(
            f"| {c.shape} | ±{c.spread:.0%} | {fx.mean_lag:.1f} / {fx.p95_lag:.1f} s, {fx.mean_requests:.2f} | "
            f"{po.mean_lag:.1f} s ({po.mean_lag / fx.mean_lag:.2f}x) / {po.p95_lag:.1f} s, "
            f"{po.mean_requests / fx.mean_requests:.2f}x | "
            f"{hi.mean_lag:.1f} s ({hi.mean_lag / fx.mean_lag:.2f}x) / {hi.p95_lag:.1f} s, "
            f"{hi.mean_requests / fx.mean_requests:.2f}x | {'yes' if met else 'no'} |"
        )
    lines += [
        "",
        "Why the misses are what they are. History can only be as sharp as the render times are: at ±5 % the",
        "end of a job of one kind is known to a few seconds, and one aimed poll just after it (which costs",
        "nothing when it hits: it replaces the next tick's request) sees it soon. At ±15 % and ±30 % the",
        "window is wider than a few aimed polls can cover within a tenth more requests than the tick, so",
        "the lag falls less. Failures and stalls are seen on the tick (never later): they carry no signal.",
        "Where progress speaks (linear, ease-in, stalls at 0 % and 50 %, a long queue) progress wins and",
        "history adds little; where it does not (no progress field, `metadata.percent` only, ease-out and",
        "S-curves levelling into 99 %, a stall at 99 %, a jump to 100 %) history does the work.",
        "",
    ]
    return "\n".join(lines)


def history_rows(per_kind: int, write: bool, learn: int = 6) -> list[Row]:
    cells = history_cells(per_kind, learn)
    if write:
        DOC.parent.mkdir(parents=True, exist_ok=True)
        command = "python -m benchmarks --only polling" + (" --quick" if per_kind < 40 else "")
        DOC.write_text(history_markdown(cells, per_kind, command))
        log(f"  wrote {DOC}")
    rows = []
    for c in cells:
        if c.shape != "no progress field":
            continue
        rows.append(
            ratio_row(
                SECTION,
                f"history, no progress, ±{c.spread:.0%}: mean lag",
                c.history.mean_lag,
                "s",
                "fixed 15 s polling",
                c.fixed.mean_lag,
                0.3 if c.spread <= 0.05 else None,
                note=f"p95 {c.history.p95_lag:.1f} s vs {c.fixed.p95_lag:.1f} s; req/job "
                f"{c.history.mean_requests / c.fixed.mean_requests:.2f}x; table in docs/performance-polling.md",
            )
        )
    return rows
