"""The poll schedule: never later than the fixed tick it replaces, earlier where progress allows.

Property tests drive ``PollSchedule`` over random monotone progress curves on a simulated clock,
the way ``wait_flow`` does (first delay, then observe each answer and ask for the next delay).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.shapes import SHAPES, jobs_for, simulate
from imagine_agent.models import TaskStatus
from imagine_agent.polling import PollPolicy, PollSchedule

FIXED = PollPolicy(first=15, floor=15, cap=15)


def processing(p: float | None) -> TaskStatus:
    return TaskStatus(status="processing", progress=p)


@dataclass(frozen=True)
class Curve:
    """A job ending at ``end``: queued until ``queued``, then whole-percent progress through ``points``
    (share of the processing time, percent), held between points; optionally no progress at all."""

    end: float
    queued: float
    points: tuple[tuple[float, int], ...]
    reports: bool = True

    def status(self, t: float) -> TaskStatus:
        if t >= self.end:
            return TaskStatus(status="completed", progress=100)
        if t < self.queued:
            return TaskStatus(status="queued")
        x = (t - self.queued) / (self.end - self.queued)
        percent = 0
        for at, value in self.points:
            if x >= at:
                percent = value
        return processing(min(99, percent) if self.reports else None)


@dataclass(frozen=True)
class Run:
    polls: list[float]
    delays: list[float]
    aimed: list[bool]

    @property
    def detected(self) -> float:
        return self.polls[-1]


def drive(curve: Callable[[float], TaskStatus], policy: PollPolicy, retry_after: float | None = None) -> Run:
    schedule = PollSchedule(policy, started_at=0.0)
    now, delay = 0.0, policy.first
    polls: list[float] = []
    delays: list[float] = []
    aimed: list[bool] = []
    for _ in range(10_000):
        now += delay
        polls.append(now)
        status = curve(now)
        if status.done:
            return Run(polls, delays, aimed)
        if status.status == "processing" and status.progress is None:  # wait_flow keeps the best so far
            status = status.model_copy(update={"progress": 0.0})
        schedule.observe(status, now, retry_after)
        delay = schedule.next_delay(now)
        aimed.append(now + delay < schedule.next_tick(now) - 1e-9)
        delays.append(delay)
    raise AssertionError("never finished")


def fixed_detection(end: float, tick: float = 15.0) -> float:
    """When a poller ticking every ``tick`` seconds from the start sees a job ending at ``end``."""
    return tick * max(1, math.ceil(end / tick - 1e-9))


monotone_points = st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 100)), min_size=0, max_size=12).map(
    lambda pts: tuple(zip(sorted(x for x, _ in pts), sorted(p for _, p in pts), strict=True))
)

curves = st.builds(
    Curve,
    end=st.floats(1.0, 600.0),
    queued=st.floats(0.0, 0.9),
    points=monotone_points,
    reports=st.booleans(),
).map(lambda c: Curve(c.end, c.queued * c.end, c.points, c.reports))


@settings(max_examples=400, deadline=None)
@given(curves)
def test_never_later_than_the_fixed_tick_and_never_a_wait_above_the_cap(curve: Curve) -> None:
    ours = drive(curve.status, PollPolicy())
    fixed = drive(curve.status, FIXED)
    assert abs(fixed.detected - fixed_detection(curve.end)) < 1e-6  # the baseline is what it claims
    assert ours.detected <= fixed.detected + 1e-6
    assert all(0 < d <= 15.0 + 1e-9 for d in ours.delays)


@settings(max_examples=400, deadline=None)
@given(curves)
def test_at_most_one_aimed_poll_between_ticks_and_at_most_one_request_more_than_the_tick(curve: Curve) -> None:
    run = drive(curve.status, PollPolicy())
    fixed = drive(curve.status, FIXED)
    misses = sum(1 for poll, aimed in zip(run.polls[1:], run.aimed, strict=False) if aimed and poll < run.detected)
    assert misses <= 1  # after an aimed poll finds the job unfinished, only the tick
    assert len(run.polls) <= len(fixed.polls) + misses
    ticks = [math.floor(p / 15.0 + 1e-9) for p, a in zip(run.polls[1:], run.aimed, strict=False) if a]
    assert len(ticks) == len(set(ticks))


@settings(max_examples=200, deadline=None)
@given(st.floats(60.0, 180.0), st.floats(0.0, 0.3))
def test_linear_progress_is_seen_within_seconds_at_no_extra_request(end: float, queued_share: float) -> None:
    """Steady progress: the completion is predicted, the poll lands just after it, never before it."""
    curve = Curve(end, queued_share * end, tuple((i / 100, i) for i in range(101)))
    ours, fixed = drive(curve.status, PollPolicy()), drive(curve.status, FIXED)
    assert len(ours.polls) == len(fixed.polls)
    assert ours.detected - end <= max(4.0, (fixed.detected - end) + 1e-6)


def test_accelerating_progress_is_not_seen_late() -> None:
    """The issue's case: p ~ t^2 made the old linear estimate late (13 s mean lag against the tick's 7.6 s)."""
    lags, fixed_lags = [], []
    for i in range(40):
        end = 60.0 + 3.0 * i
        curve = Curve(end, 0.1 * end, tuple((math.sqrt(p / 100), p) for p in range(101)))
        lags.append(drive(curve.status, PollPolicy()).detected - end)
        fixed_lags.append(fixed_detection(end) - end)
    assert sum(lags) / len(lags) <= 0.3 * sum(fixed_lags) / len(fixed_lags)


def test_without_progress_it_polls_on_the_tick_exactly() -> None:
    curve = Curve(100.0, 10.0, (), reports=False)
    run = drive(curve.status, PollPolicy())
    assert run.polls == [15.0 * k for k in range(1, 8)]


def test_a_stall_at_99_costs_one_aimed_poll_then_the_tick() -> None:
    # 1 %/s to 99 % at 99 s, then held until 160 s.
    def status(t: float) -> TaskStatus:
        return TaskStatus(status="completed") if t >= 160 else processing(min(99, math.floor(t)))

    run = drive(status, PollPolicy())
    assert sum(run.aimed) == 1
    assert run.detected == fixed_detection(160)
    assert len(run.polls) == len(drive(status, FIXED).polls) + 1


def test_progress_going_back_restarts_the_estimate() -> None:
    s = PollSchedule(PollPolicy(), started_at=0)
    s.observe(processing(10), now=15)
    s.observe(processing(40), now=30)
    assert s.estimate(30) is not None
    s.observe(processing(5), now=45)
    assert s.estimate(45) is None
    assert s.next_delay(45) == 15


def test_a_precise_linear_estimate_aims_just_after_completion() -> None:
    s = PollSchedule(PollPolicy(), started_at=0)
    s.observe(processing(0), now=15)  # 0 %: not started, no rate from it
    s.observe(processing(36), now=45)
    s.observe(processing(72), now=75)  # 1.2 %/s: 100 % at 98.3 s
    estimate = s.estimate(75)
    assert estimate is not None and abs(estimate.remaining - 27.5 / 1.2) < 1e-9
    assert s.next_delay(75) == 15  # the late bound (98.7 s) is past the next tick (90 s): poll on the tick
    s.observe(processing(90), now=90)
    delay = s.next_delay(90)
    assert 98.33 <= 90 + delay <= 99.4  # aimed just after completion, before the tick at 105


def test_slowing_down_is_not_aimed_at() -> None:
    """Ease-out: the rate halves; where it levels off is hidden by whole percent, so poll on the tick."""
    s = PollSchedule(PollPolicy(), started_at=0)
    for now, p in ((15, 40), (30, 70), (45, 85)):
        s.observe(processing(p), now=now)
    assert s.estimate(45) is None
    assert s.next_delay(45) == 15


def test_speeding_up_aims_from_the_latest_rate() -> None:
    s = PollSchedule(PollPolicy(), started_at=0)
    for now, p in ((15, 10), (30, 30), (45, 60)):  # 1.33 then 2 %/s
        s.observe(processing(p), now=now)
    estimate = s.estimate(45)
    assert estimate is not None and abs(estimate.remaining - 39.5 / 2) < 1e-9
    s.observe(processing(90), now=60)  # 2 %/s again: steady; done by about 65 s
    delay = s.next_delay(60)
    assert 65 <= 60 + delay < 75


def test_a_stall_restarts_the_rate_from_its_last_reading() -> None:
    s = PollSchedule(PollPolicy(), started_at=0)
    for now, p in ((15, 20), (30, 50), (45, 50), (60, 50), (75, 65)):  # held at 50 % from 30 s to at least 60 s
        s.observe(processing(p), now=now)
    estimate = s.estimate(75)
    assert estimate is not None and abs(estimate.remaining - 34.5 / 1.0) < 1e-9  # 15 % in the 15 s since 60 s


def test_retry_after_wins() -> None:
    s = PollSchedule(PollPolicy(), started_at=0)
    s.observe(processing(50), now=15, retry_after=40)
    assert s.next_delay(15) == 40
    s2 = PollSchedule(PollPolicy(max_retry_after=20), started_at=0)
    s2.observe(processing(50), now=15, retry_after=400)
    assert s2.next_delay(15) == 20


def test_never_below_the_floor_unless_the_tick_is_closer() -> None:
    s = PollSchedule(PollPolicy(floor=2), started_at=0)
    s.observe(processing(10), now=15)
    s.observe(processing(98), now=16)  # done any moment
    assert s.next_delay(16) == 2
    s2 = PollSchedule(PollPolicy(floor=2), started_at=0)
    s2.observe(processing(10), now=29.5)
    assert s2.next_delay(29.5) == 0.5  # the tick at 30 comes first


def test_scaled_policy() -> None:
    p = PollPolicy(first=2, floor=1, cap=20, max_retry_after=100).scaled(10)
    assert (p.first, p.floor, p.cap, p.max_retry_after) == (0.2, 0.1, 2.0, 10.0)


def test_floor_equal_to_cap_is_a_fixed_interval_poller() -> None:
    """The benchmarks' provider-guidance baseline: 15 s between polls, whatever the progress says."""
    s = PollSchedule(FIXED, started_at=0)
    readings = [TaskStatus(status="queued"), processing(5), processing(40), processing(80), processing(99)]
    delays = []
    for i, status in enumerate(readings):
        now = 15.0 * (i + 1)
        s.observe(status, now=now)
        delays.append(s.next_delay(now))
    assert delays == [15.0] * len(readings)


def test_every_benchmark_shape_through_wait_flow_is_never_later_than_the_fixed_tick() -> None:
    """The real wait_flow (best-progress keeping, status parsing) on a simulated clock, every shape."""
    for shape in SHAPES:
        for job in jobs_for(shape, 30):
            ours, fixed = simulate(job, PollPolicy()), simulate(job, FIXED)
            assert ours.polls[-1] <= fixed.polls[-1] + 1e-6, shape.name
            assert ours.requests <= fixed.requests + 1, shape.name  # at most one aimed poll misses, once
            assert max(ours.delays) <= 15.0 + 1e-9, shape.name


def test_retry_after_is_honoured_through_wait_flow() -> None:
    job = jobs_for(SHAPES[0], 1)[0]
    run = simulate(job, PollPolicy(), retry_after=lambda now: 40.0)
    assert run.delays[0] == 15.0 and all(d >= 40.0 for d in run.delays[1:])
