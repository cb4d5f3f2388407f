"""When to poll next: never later than the provider's fixed 15 s tick, earlier where progress says so.

The provider suggests polling every 15 s. This schedule keeps that tick as a guarantee: every wait
ends no later than the next tick (``cap`` seconds apart, counted from the start of waiting), so a job
is never seen finished later than a fixed 15 s poller would see it, whatever its progress does.
Between ticks it adds at most one *aimed* poll: when the progress readings predict the job will
finish before the next tick, it polls just after the predicted completion instead of at the tick.
An aimed poll that finds the job unfinished costs one request more than the fixed tick; after such a
miss the schedule trusts no prediction for that job again and polls on the tick, so a job costs at
most one request more than fixed 15 s polling.

The prediction distrusts itself. Progress comes in whole percent, so each reading may be up to one
percent below the truth, and the schedule always aims at the *late* end of what the readings allow:
from the last three readings (a stall restarts them, 0 % says nothing about a rate), linear when
the two rates agree within that rounding; when progress speeds up, the latest rate (the coming one
is faster, so the aim stays late); when it slows down, no aim at all (the end of a curve that levels
off into 99 % is hidden by the rounding). Where progress speeds up (t^2, t^3, the start of an S-curve),
two or three readings fit a power since processing began, which says more than a line: see ``_power``.
``Retry-After`` always wins. ``benchmarks/shapes.py`` runs
it over twelve progress shapes against fixed 15 s and 10 s polling; ``docs/performance.md`` has
the table and why the misses are what they are.

History speaks where progress does not. Given ``aims`` (``RenderHistory.plan``: polls placed where
recent jobs of the same API, model and duration ended, within a request budget), the schedule polls at
them whenever the readings give no prediction, and before the first tick too; the ticks stay, so a
job that ends far from its history is still seen on the tick. A history aim that finds the job
unfinished does not stop the others: their expected cost was counted when they were planned. Where
it finds the job running and reporting progress, one more poll a ``floor`` later (once per wait)
turns that single reading into a rate, and the readings take over from the history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .models import TaskStatus

__all__ = ["Estimate", "PollPolicy", "PollSchedule"]


@dataclass(frozen=True)
class PollPolicy:
    """Seconds. first: delay before the first poll; cap: the fixed tick this schedule never falls
    behind (no wait is longer); floor: the shortest wait, and the closest an aimed poll comes to a
    tick; max_retry_after: the longest ``Retry-After`` obeyed. ``first`` above ``cap`` gives up the
    guarantee for the first tick. ``PollPolicy(15, 15, 15)`` is a plain fixed 15 s poller."""

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
    """Seconds until the predicted completion (from ``now``), and how much later it may come."""

    remaining: float
    error: float


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


def _power_end(a: Reading, b: Reading, k: float) -> tuple[float, float] | None:
    """``p = 100 ((t - s) / (T - s)) ** k`` through two readings: the start ``s`` and the end ``T``."""
    (t1, p1), (t2, p2) = a, b
    u1, u2 = (min(p1, 100.0) / 100) ** (1 / k), (min(p2, 100.0) / 100) ** (1 / k)
    if t2 <= t1 or u2 <= u1:
        return None
    span = (t2 - t1) / (u2 - u1)
    start = t1 - u1 * span
    return start, start + span


def _power(a: Reading, b: Reading, after: float | None, middle: Reading | None = None) -> tuple[float, float] | None:
    """Completion and its late bound for a curve that speeds up like t^3 or t^2 since processing began.

    Two readings fit a line as well as a power: what tells them apart is when processing must have
    begun (after ``after``: the last queued answer, or the wait's start for a job created with it).
    The highest power whose start falls after it is taken; ``middle``, a third reading, must lie on it
    within the rounding. The late bound is the latest end any rounding of the readings allows.
    """
    if after is None:
        return None
    (t1, p1), (t2, p2) = a, b
    for k in (3.0, 2.0):
        fit = _power_end((t1, p1 + 0.5), (t2, p2 + 0.5), k)
        if fit is None or not after - 1e-9 <= fit[0] <= t1:
            continue
        start, at = fit
        if middle is not None:
            tm, pm = middle
            expected = 100 * ((tm - start) / (at - start)) ** k
            if not pm - 1.0 <= expected <= pm + 2.0:
                continue
        ends = [f[1] for x in (p1, p1 + 1) for y in (p2, p2 + 1) if (f := _power_end((t1, x), (t2, y), k))]
        return at, max([at, *ends])
    return None


@dataclass
class PollSchedule:
    policy: PollPolicy
    started_at: float
    _readings: list[Reading] = field(default_factory=list)  # the last three processing readings
    _retry_after: float | None = None
    _aimed: bool = False  # the last wait ended before its tick, at a predicted completion
    _missed: bool = False  # an aimed poll found the job unfinished: the tick only, from then on
    aims: tuple[float, ...] = ()  # history's aimed polls, seconds after started_at
    fresh: bool = False  # the job was created as this wait began: its processing began after started_at
    _queued_at: float | None = None  # the last queued answer
    _restarted: bool = False  # a stall or a restart: readings no longer run from the processing's start
    _on_aim: bool = False  # the last poll was one of history's aims
    _follow_up: bool = False  # a history aim found the job running with progress: read it once more
    _followed: bool = False  # that second reading was taken (once per wait)

    def first_delay(self, initial: float) -> float:
        """The wait before the first poll: ``initial``, or earlier where history aims before it."""
        if initial > 0 and self.aims and self.aims[0] < initial:
            self._on_aim = True
            return self.aims[0]
        return initial

    def _history_aim(self, now: float, tick: float) -> float | None:
        """The next history aim after ``now`` and clearly before ``tick``, as a time."""
        for aim in self.aims:
            at = self.started_at + aim
            if at > now + 1e-6:
                return at if at < tick - 1e-6 else None
        return None

    def observe(self, status: TaskStatus, now: float, retry_after: float | None = None) -> None:
        """Record one status answer (``now``: when it came) and the server's ``Retry-After``, if any."""
        self._retry_after = retry_after
        if status.status == "processing" and status.progress is not None and math.isfinite(status.progress):
            progress = float(status.progress)
            if not self._readings or progress > self._readings[-1][1]:
                self._readings = [*self._readings[-2:], (now, progress)]
            else:  # a stall, however short, or a restart: the rate starts again from here
                self._readings = [(now, progress)]
                self._restarted = True
            if progress <= 0:
                self._queued_at = now  # 0 %: processing has not begun
        elif status.status == "queued":
            self._queued_at = now
        if self._aimed and not status.done:
            self._missed = True  # the prediction was early, even if progress moved
        if self._on_aim and not self._followed and status.status == "processing" and (status.progress or 0) > 0:
            self._follow_up = True  # history was early; a second reading gives the rate
        self._aimed = self._on_aim = False

    def _predict(self) -> tuple[float, float] | None:
        """Predicted completion time and its late bound; None when the readings give no safe rate."""
        r = [reading for reading in self._readings if reading[1] > 0]  # 0 %: not started, when unknown
        after = (
            None
            if self._restarted
            else (self._queued_at if self._queued_at is not None else self.started_at if self.fresh else None)
        )
        if len(r) < 3:
            if len(r) < 2:
                return None
            # Two readings: a power only for a job seen processing from its first poll (no queued or 0 %
            # answer to pin its start); a wrong bet costs one request, never a later sighting.
            early = after if self._queued_at is None else None
            return _power(r[-2], r[-1], early) or _linear(r[-2], r[-1])
        (t0, p0), (t1, p1), (t2, p2) = r[-3:]
        before, latest = (p1 - p0) / (t1 - t0), (p2 - p1) / (t2 - t1)
        rounding = 1.0 / (t1 - t0) + 1.0 / (t2 - t1)  # how far the two rates may differ from rounding alone
        if latest < before - rounding / 2:
            return None  # slowing down: how it levels off into 99 % is hidden by the rounding
        if latest > before + rounding:  # speeding up: a power since the start, else the latest rate
            return _power(r[-3], r[-1], after, middle=r[-2]) or _linear(r[-2], r[-1])
        return _linear(r[-3], r[-1])  # steady: the longer baseline is the more precise

    def estimate(self, now: float) -> Estimate | None:
        """When the job should finish, from the progress readings; None while there is nothing to go on."""
        predicted = self._predict()
        if predicted is None:
            return None
        at, late = predicted
        return Estimate(max(0.0, at - now), late - at)

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
        aimed = on_aim = False
        if predicted is not None:
            late = max(predicted[1], now + p.floor)
            if late <= tick - p.floor:  # aim only where it lands clearly before the tick
                target, aimed = late, True
        elif self._follow_up and now + p.floor <= tick - p.floor:
            target = now + p.floor  # the second reading; from the two, the rate predicts the end
            self._followed = True
        elif (at := self._history_aim(now, tick)) is not None:
            target, on_aim = at, True  # where recent jobs of this kind ended; planned within the request budget
        self._follow_up = False
        self._aimed, self._on_aim = aimed, on_aim
        delay = max(target - now, min(p.floor, tick - now))
        if self._retry_after is not None:
            delay = max(delay, min(self._retry_after, p.max_retry_after))
        return delay
