"""Progress shapes over simulated time, fed to the real ``wait_flow`` (and so to ``PollSchedule``).

Deterministic and fast: no server, no sleeping. A job's ``status_at(t)`` is the status body the API
would answer ``t`` seconds after the wait began; the driver answers each request the flow yields with
that body and advances a simulated clock on each ``Sleep``. Detection lag is the time from the job's
end (completion or failure) to the first poll that sees it; requests are the status reads it cost.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from imagine_agent.errors import GenerationFailedError, ImagineError
from imagine_agent.flows import Sleep, Update, wait_flow
from imagine_agent.history import RenderHistory, WaitTiming
from imagine_agent.polling import PollPolicy

Curve = Callable[[float], float]  # share of the run done (0..1) -> share of progress (0..1)
STATUS_URL = "http://imagine.test/generation/t/status"


def _stall(at: float, start: float, length: float) -> Curve:
    """Linear to ``at`` by ``start``, held there for ``length`` of the run, then linear to the end."""

    def curve(x: float) -> float:
        if x < start:
            return at * x / start
        if x < start + length:
            return at
        return at + (1 - at) * (x - start - length) / (1 - start - length)

    return curve


def _smoothstep(x: float) -> float:
    return x * x * (3 - 2 * x)


@dataclass(frozen=True)
class Shape:
    """How a job reports itself over its run. ``queued``: the share of the run spent queued first;
    ``fail_at``: the share of the run at which it fails instead of completing; ``field``: where the
    progress number travels (``progress``, ``metadata.percent`` or nowhere)."""

    name: str
    curve: Curve
    queued: float = 0.1
    fail_at: float | None = None
    field: str = "progress"


SHAPES: tuple[Shape, ...] = (
    Shape("linear", lambda x: x),
    Shape("ease-in (p ~ t^2)", lambda x: x * x),
    Shape("ease-out", lambda x: 1 - (1 - x) ** 2),
    Shape("S-curve (smoothstep)", _smoothstep),
    Shape("stall at 0 % (first 40 %)", lambda x: 0.0 if x < 0.4 else (x - 0.4) / 0.6),
    Shape("stall at 50 % (30 % of the run)", _stall(0.5, 0.35, 0.3)),
    Shape("stall at 99 % (30 % of the run)", lambda x: min(0.995, x / 0.7)),
    Shape("jumps 0 -> 60 -> 100", lambda x: 0.0 if x < 0.5 else 0.6),
    Shape("no progress field", lambda x: x, field=""),
    Shape("progress only in metadata.percent", lambda x: x, field="metadata.percent"),
    Shape("long queued phase (60 %)", lambda x: x, queued=0.6),
    Shape("fails midway", lambda x: x, fail_at=0.5),
)


@dataclass(frozen=True)
class Job:
    shape: Shape
    run: float  # seconds from the start of waiting to the job's end (completion, or failure)

    @property
    def ends_at(self) -> float:
        return self.run * (self.shape.fail_at or 1.0)

    def body_at(self, t: float) -> dict[str, Any]:
        s = self.shape
        if t >= self.ends_at:
            if s.fail_at is not None:
                return {"status": "failed", "error": "simulated failure"}
            url = "https://cdn.imagine.test/v.mp4"
            return {"status": "completed", "progress": 100, "result": {"generation": {"video": {"url": url}}}}
        queued_until = self.run * s.queued
        if t < queued_until:
            return {"status": "queued"}
        x = (t - queued_until) / (self.run - queued_until)
        percent = min(99, max(0, math.floor(100 * s.curve(x))))
        if s.field == "progress":
            return {"status": "processing", "progress": percent}
        if s.field == "metadata.percent":
            return {"status": "processing", "metadata": {"percent": percent}}
        return {"status": "processing"}


@dataclass(frozen=True)
class Outcome:
    lag: float  # seconds from the job's end to its detection
    requests: int
    delays: tuple[float, ...]  # every sleep the flow asked for
    polls: tuple[float, ...]  # simulated times of every status read


def simulate(
    job: Job,
    policy: PollPolicy,
    *,
    retry_after: Callable[[float], float | None] | None = None,
    aims: tuple[float, ...] = (),
    timing: WaitTiming | None = None,
) -> Outcome:
    """Run ``wait_flow`` for one job on a simulated clock (created at 0, when the wait begins)."""
    now = 0.0
    polls: list[float] = []
    delays: list[float] = []
    request = httpx.Request("GET", STATUS_URL)
    flow = wait_flow(
        lambda: request,
        "t",
        policy=policy,
        timeout=None,
        initial_delay=policy.first,
        clock=lambda: now,
        aims=aims,
        timing=timing,
    )
    step: Any = next(flow)
    try:
        while True:
            if isinstance(step, Sleep):
                delays.append(step.seconds)
                now += step.seconds
                step = flow.send(None)
            elif isinstance(step, httpx.Request):
                polls.append(now)
                wait = retry_after(now) if retry_after else None
                headers = {"retry-after": f"{wait:g}"} if wait is not None else {}
                step = flow.send(httpx.Response(200, json=job.body_at(now), headers=headers, request=step))
            elif isinstance(step, Update):
                step = flow.send(None)
            else:
                raise AssertionError(f"unexpected step {step!r}")
    except StopIteration:
        pass
    except GenerationFailedError:
        pass
    except ImagineError as exc:  # pragma: no cover - a bug in the flow, not a result
        raise AssertionError(f"{job.shape.name}: {exc}") from exc
    return Outcome(polls[-1] - job.ends_at, len(polls), tuple(delays), tuple(polls))


def with_history(jobs: list[Job], policy: PollPolicy, *, learn: int = 6) -> list[Outcome]:
    """The jobs one after another, each polled with the history of those before it (the most recent
    ``MAX_SAMPLES``), as the service does from the ledger; the first ``learn`` build the history and are
    not returned. Brackets are what a poller can know: last seen unfinished, first seen done."""
    brackets: list[tuple[float, float]] = []
    outcomes: list[Outcome] = []
    for i, job in enumerate(jobs):
        history = RenderHistory.of(brackets)
        aims = (
            () if history is None else history.plan(offset=0.0, first=policy.first, cap=policy.cap, floor=policy.floor)
        )
        timing = WaitTiming()
        outcome = simulate(job, policy, aims=aims, timing=timing)
        if timing.completed is not None:  # failures never enter the history
            brackets.insert(0, (timing.last_unfinished or 0.0, timing.completed))
        if i >= learn:
            outcomes.append(outcome)
    return outcomes


def spread_jobs(shape: Shape, count: int, *, centre: float, spread: float, seed: int = 23) -> list[Job]:
    """``count`` jobs of one kind: run times uniform within ``centre`` +- ``spread`` (a share)."""
    rng = random.Random(seed)
    return [Job(shape, centre * (1 + rng.uniform(-spread, spread))) for _ in range(count)]


def jobs_for(shape: Shape, count: int, *, seed: int = 17, runs: tuple[float, float] = (60.0, 180.0)) -> list[Job]:
    """``count`` jobs of the provider's 1-3 minutes, the same durations for every shape and policy."""
    rng = random.Random(seed)
    return [Job(shape, rng.uniform(*runs)) for _ in range(count)]


@dataclass(frozen=True)
class Summary:
    mean_lag: float
    p95_lag: float
    max_lag: float
    mean_requests: float
    max_requests: int


def summarize(outcomes: list[Outcome]) -> Summary:
    lags = [o.lag for o in outcomes]
    requests = [o.requests for o in outcomes]
    return Summary(
        statistics.fmean(lags),
        statistics.quantiles(lags, n=20)[-1],
        max(lags),
        statistics.fmean(requests),
        max(requests),
    )
