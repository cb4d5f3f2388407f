"""When to poll next: from observed progress, not a blind 15 s tick.

The provider suggests polling every 15 s; a job that finishes just after a poll is then seen up to
15 s late. We estimate the completion time from the progress rate and poll just before it, then in
short steps, so completion is seen sooner with no more requests. ``Retry-After`` always wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .models import TaskStatus

__all__ = ["PollPolicy", "PollSchedule"]


@dataclass(frozen=True)
class PollPolicy:
    """first: delay before the first poll; floor/cap bound every delay; approach: the share of the
    estimated remaining time to sleep (lower = more careful, more requests)."""

    first: float = 1.0
    floor: float = 1.0
    cap: float = 15.0
    approach: float = 0.85
    max_retry_after: float = 120.0

    def scaled(self, factor: float) -> PollPolicy:
        """The same policy for a clock running ``factor`` times faster (the time-scaled sandbox)."""
        return PollPolicy(self.first / factor, self.floor / factor, self.cap / factor, self.approach,
                          self.max_retry_after / factor)


@dataclass
class PollSchedule:
    policy: PollPolicy
    started_at: float
    _anchor: tuple[float, float] | None = None  # first (time, progress) seen while processing
    _latest: tuple[float, float] | None = None
    _retry_after: float | None = None
    _polls: int = field(default=0)

    def observe(self, status: TaskStatus, now: float, retry_after: float | None = None) -> None:
        self._polls += 1
        self._retry_after = retry_after
        if status.status == "processing" and status.progress is not None:
            point = (now, float(status.progress))
            if self._anchor is None or point[1] < self._anchor[1]:
                self._anchor = point
            self._latest = point

    def estimated_remaining(self, now: float) -> float | None:
        """Seconds until completion, from the progress rate; None while there is nothing to go on."""
        if self._latest is None or self._anchor is None:
            return None
        (t0, p0), (t1, p1) = self._anchor, self._latest
        if t1 > t0 and p1 > p0:
            rate = (p1 - p0) / (t1 - t0)
        elif p1 > 0 and t1 > self.started_at:
            rate = p1 / (t1 - self.started_at)
        else:
            return None
        return max(0.0, (100.0 - p1) / rate - (now - t1))

    def next_delay(self, now: float) -> float:
        p = self.policy
        remaining = self.estimated_remaining(now)
        if remaining is None:
            # Nothing to estimate from yet: back off geometrically from `first` (1, 2, 4, 8 … capped).
            delay = p.first * (2 ** min(self._polls, 16))
        else:
            delay = remaining * p.approach
        delay = min(max(delay, p.floor), p.cap)
        if self._retry_after is not None:
            delay = max(delay, min(self._retry_after, p.max_retry_after))
        return delay
