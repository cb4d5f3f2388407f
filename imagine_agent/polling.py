"""When to poll next: never later than the provider's fixed 15 s tick, earlier where progress says so.

The provider suggests polling every 15 s. This schedule keeps that tick as a guarantee: every wait
ends no later than the next tick (``cap`` seconds apart, counted from the start of waiting), so a job
is never seen finished later than a fixed 15 s poller would see it, whatever its progress does.
Between ticks it adds at most one *aimed* poll: when the progress readings predict the job will
finish before the next tick, it polls just after the predicted completion instead of at the tick.
An aimed poll that finds the job unfinished costs one request more than the fixed tick; after such a
miss no poll is aimed until progress moves again (a stall at 99 % is then polled on the tick).

The prediction distrusts itself: it is made from the last three readings (whole percent, so each is
off by up to one), linear when their rates agree within that rounding, else curved (progress that
speeds up or slows down), and it aims at the late end of what the readings allow, so an aimed poll
rarely lands before completion. ``Retry-After`` always wins. ``benchmarks/shapes.py`` runs it over
twelve progress shapes against fixed 15 s and 10 s polling; ``benchmarks/RESULTS.md`` has the table.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from .models import TaskStatus

__all__ = ["Estimate", "PollPolicy", "PollSchedule"]


@dataclass(frozen=True)
class PollPolicy:
    """Seconds. first: delay before the first poll; cap: the fixed tick this schedule never falls
    behind (no wait is longer); floor: the shortest wait, and the closest an aimed poll comes to a
    tick; max_retry_after: the longest ``Retry-After`` obeyed. ``PollPolicy(15, 15, 15)`` is a plain
    fixed 15 s poller."""

    first: float = 15.0
    floor: float = 1.0
    cap: float = 15.0
    max_retry_after: float = 120.0

    def scaled(self, factor: float) -> PollPolicy:
        """The same policy for a clock running ``factor`` times faster (the time-scaled sandbox)."""
        return PollPolicy(
            first=self.first / factor,
            floor=self.floor / factor,
            cap=self.cap / factor,
            max_retry_after=self.max_retry_after / factor,
        )


@dataclass(frozen=True)
class Estimate:
    """Seconds until completion (from ``now``), how far it may be off, and whether the rate was curved."""

    remaining: float
    error: float
    curved: bool


Reading = tuple[float, float]  # (time, progress in percent)


def _linear(a: Reading, b: Reading) -> tuple[float, float] | None:
    """Completion time from two readings, and its late bound (rates from whole-percent readings)."""
    (t0, p0), (t1, p1) = a, b
    if t1 <= t0 or p1 <= p0:
        return None
    span = t1 - t0
    rate = (p1 - p0) / span
    slow = max(p1 - p0 - 1.0, 0.5) / span  # each reading is up to one percent below the truth
    return t1 + (99.5 - p1) / rate, t1 + (100.0 - p1) / slow


def _parabola(a: Reading, b: Reading, c: Reading) -> float | None:
    """When the parabola through three readings reaches 100 % (or levels off below it), if it rises at c."""
    (t0, p0), (t1, p1), (t2, p2) = a, b, c
    r01 = (p1 - p0) / (t1 - t0)
    r12 = (p2 - p1) / (t2 - t1)
    accel = (r12 - r01) / ((t2 - t0) / 2)
    speed = r12 + accel * (t2 - t1) / 2  # the rate at t2
    left = 100.0 - p2
    if speed <= 0:
        return None
    if abs(accel) < 1e-12:
        return t2 + left / speed
    disc = speed * speed + 2 * accel * left
    # Slowing down and never reaching 100 on the parabola: it tops out, take its top.
    return t2 + (-speed / accel if disc < 0 else (-speed + math.sqrt(disc)) / accel)


def _curved(a: Reading, b: Reading, c: Reading) -> tuple[float, float] | None:
    """Completion time from three readings whose rate changes, and its late bound: the latest of the
    parabolas through any of the true values the whole-percent readings allow (each up to 1 % more)."""
    if not (a[0] < b[0] < c[0]) or c[1] <= b[1]:
        return None
    ends = []
    for da, db, dc in itertools.product((0.0, 1.0), repeat=3):
        end = _parabola((a[0], a[1] + da), (b[0], b[1] + db), (c[0], c[1] + dc))
        if end is None:
            return None  # some values the readings allow stop rising: no bound
        ends.append(end)
    middle = _parabola((a[0], a[1] + 0.5), (b[0], b[1] + 0.5), (c[0], c[1] + 0.5))
    return (middle if middle is not None else max(ends)), max(ends)


@dataclass
class PollSchedule:
    policy: PollPolicy
    started_at: float
    _readings: list[Reading] = field(default_factory=list)  # processing readings, progress never going back
    _retry_after: float | None = None
    _aimed: bool = False  # the last wait ended before its tick, at a predicted completion
    _missed: bool = False  # an aimed poll found the job unfinished and progress has not moved since

    def observe(self, status: TaskStatus, now: float, retry_after: float | None = None) -> None:
        self._retry_after = retry_after
        moved = False
        if status.status == "processing" and status.progress is not None and math.isfinite(status.progress):
            progress = float(status.progress)
            last = self._readings[-1][1] if self._readings else None
            if last is None or progress > last:
                moved = True
                self._readings.append((now, progress))
            elif progress == last:  # still there: the latest time it was, the better start for a rate
                self._readings[-1] = (now, progress)
            elif progress < last:  # went back (a restart): start over from here
                self._readings = [(now, progress)]
        if self._aimed and not status.done:
            self._missed = True  # even if progress moved: the prediction was early
        elif moved:
            self._missed = False
        self._aimed = False

    def _predict(self) -> tuple[float, float, bool] | None:
        """Predicted completion time, its late bound, and whether the rate is curved; None without a rate."""
        r = self._readings
        if len(r) < 2:
            return None
        linear = _linear(r[-2], r[-1])
        if len(r) < 3 or linear is None:
            return None if linear is None else (*linear, False)
        (t0, p0), (t1, p1), (t2, p2) = r[-3:]
        # Rates of the two spans agree within rounding (one percent per reading): linear, long baseline.
        slack = 1.0 / (t1 - t0) + 1.0 / (t2 - t1)
        if abs((p2 - p1) / (t2 - t1) - (p1 - p0) / (t1 - t0)) <= slack:
            long = _linear(r[-3], r[-1])
            return None if long is None else (*long, False)
        curved = _curved(r[-3], r[-2], r[-1])
        return None if curved is None else (*curved, True)

    def estimate(self, now: float) -> Estimate | None:
        """When the job should finish, from the progress readings; None while there is nothing to go on."""
        predicted = self._predict()
        if predicted is None:
            return None
        at, late, curved = predicted
        return Estimate(max(0.0, at - now), late - at, curved)

    def estimated_remaining(self, now: float) -> float | None:
        """Seconds until completion, from the progress readings; None while there is nothing to go on."""
        estimate = self.estimate(now)
        return None if estimate is None else estimate.remaining

    def next_tick(self, now: float) -> float:
        """The first tick of the fixed poller strictly after ``now``: the latest the next poll may be."""
        tick = self.policy.cap
        return self.started_at + tick * (math.floor((now - self.started_at) / tick + 1e-9) + 1)

    def next_delay(self, now: float) -> float:
        p = self.policy
        tick = self.next_tick(now)
        target = tick
        predicted = None if self._missed else self._predict()
        if predicted is not None:
            late = max(predicted[1], now + p.floor)
            if late <= tick - p.floor:  # aim only where it lands clearly before the tick
                target = late
        self._aimed = target < tick
        delay = max(target - now, min(p.floor, tick - now))
        if self._retry_after is not None:
            delay = max(delay, min(self._retry_after, p.max_retry_after))
        return delay
