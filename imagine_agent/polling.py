"""When to poll next: from observed progress, not a blind 15 s tick.

The provider suggests polling every 15 s; a job that finishes just after a poll is then seen up to
15 s late, and a 2-minute job costs 8 requests. We poll blind (backing off from ``first`` to
``blind``, the provider's 15 s) only until two progress readings give a rate. From the rate we
estimate the completion time and how precise that estimate is (progress comes in whole percent):

- imprecise: sleep ``approach`` of the remaining time (up to ``cap``), then estimate again from a
  longer baseline;
- precise to within ``floor``: sleep until just past the estimated completion.

So completion is seen about a second late with fewer requests than the fixed tick. A job found
unfinished after its estimated completion (progress that stalls, say at 99 %) is polled with a
doubling delay, never longer than ``blind``. ``Retry-After`` always wins. The estimate is linear:
progress that speeds up towards the end makes it late (``benchmarks/RESULTS.md`` has the numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import TaskStatus

__all__ = ["Estimate", "PollPolicy", "PollSchedule"]


@dataclass(frozen=True)
class PollPolicy:
    """Seconds. first: delay before the first poll; floor/cap: bounds of every delay; approach: the
    share of an imprecise estimate of the remaining time to sleep; max_retry_after: the longest
    ``Retry-After`` obeyed; blind: the longest delay while there is no rate to estimate from (and
    while a job is overdue)."""

    first: float = 2.0
    floor: float = 1.0
    cap: float = 60.0
    approach: float = 0.8
    max_retry_after: float = 120.0
    blind: float = 15.0

    def scaled(self, factor: float) -> PollPolicy:
        """The same policy for a clock running ``factor`` times faster (the time-scaled sandbox)."""
        return PollPolicy(
            first=self.first / factor,
            floor=self.floor / factor,
            cap=self.cap / factor,
            approach=self.approach,
            max_retry_after=self.max_retry_after / factor,
            blind=self.blind / factor,
        )


@dataclass(frozen=True)
class Estimate:
    """Seconds until completion, how far off that may be, and whether it rests on a measured rate."""

    remaining: float
    error: float
    measured: bool


@dataclass
class PollSchedule:
    policy: PollPolicy
    started_at: float
    _anchor: tuple[float, float] | None = None  # first (time, progress) seen while processing
    _latest: tuple[float, float] | None = None
    _retry_after: float | None = None
    _polls: int = 0
    _aimed_past_completion: bool = False  # the last delay was meant to land after the job finished
    _overdue: int = 0  # polls since progress last moved that found the job unfinished though estimated done

    def observe(self, status: TaskStatus, now: float, retry_after: float | None = None) -> None:
        self._polls += 1
        self._retry_after = retry_after
        if self._aimed_past_completion and not status.done:
            self._overdue += 1
        if status.status == "processing" and status.progress is not None:
            point = (now, float(status.progress))
            if self._anchor is None or point[1] < self._anchor[1]:
                self._anchor = self._latest = point
            elif self._latest is None or point[1] > self._latest[1]:
                self._latest = point  # when progress first reached this value: a stall counts against it
                self._overdue = 0

    def estimate(self, now: float) -> Estimate | None:
        """When the job should finish, from the progress rate; None while there is nothing to go on.

        With two readings the rate is measured between them; its error comes from progress being
        whole percent. With one reading the rate is taken from the start of waiting, which counts
        queue time too: a guess (``measured=False``) that may be far too slow or fast.
        """
        if self._latest is None or self._anchor is None:
            return None
        (t0, p0), (t1, p1) = self._anchor, self._latest
        if t1 > t0 and p1 > p0:
            rate = (p1 - p0) / (t1 - t0)
            measured = True
        elif p1 > 0 and t1 > self.started_at:
            rate = p1 / (t1 - self.started_at)
            measured = False
        else:
            return None
        to_finish = (100.0 - p1) / rate  # from the latest reading
        # One percent of slack in the measured span, and one in the latest reading.
        error = (to_finish + (t1 - t0)) / (p1 - p0) if measured else to_finish
        return Estimate(max(0.0, to_finish - (now - t1)), error, measured)

    def estimated_remaining(self, now: float) -> float | None:
        """Seconds until completion, from the progress rate; None while there is nothing to go on."""
        estimate = self.estimate(now)
        return None if estimate is None else estimate.remaining

    def next_delay(self, now: float) -> float:
        p = self.policy
        blind = min(p.blind, p.cap)
        estimate = self.estimate(now)
        if estimate is None:
            # Nothing to estimate from yet: back off geometrically from `first` (2, 4, 8 … up to blind).
            delay = min(p.first * 2.0 ** min(self._polls, 16), blind)
        elif not estimate.measured:
            delay = min(estimate.remaining * p.approach, blind)
        elif estimate.error <= p.floor:
            # Precise: land just after the estimated completion.
            delay = estimate.remaining + max(estimate.error, p.floor / 2)
        else:
            delay = estimate.remaining * p.approach
        if self._overdue:
            delay = max(delay, min(p.floor * 2.0**self._overdue, blind))
        delay = min(max(delay, p.floor), p.cap)
        self._aimed_past_completion = estimate is not None and delay >= estimate.remaining
        if self._retry_after is not None:
            delay = max(delay, min(self._retry_after, p.max_retry_after))
        return delay
