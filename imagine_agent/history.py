"""How long jobs of one kind took at one API, and where that says the next one's polls should go.

A job's end is only ever *bracketed*: it came after the last poll that found it unfinished and no later
than the first poll that found it done. Each recent job of the same API origin, model and duration gives
one bracket ``(lo, hi]`` in seconds since the task was created. The history is where the brackets say
the ends fell, weighted where they overlap (``_turnbull``): a bracket from a coarse poll says "somewhere
in these 15 s" and no more, narrow ones sharpen it. Outliers are trimmed by the brackets' midpoints
(median and MAD); failures never enter (the ledger gives completed tasks only); only the most recent
``MAX_SAMPLES`` count. One more sample's weight sits just past the latest end seen (``of``).

``plan`` chooses *aimed* polls between the fixed ticks. An aimed poll at ``a`` costs one request more than
the tick only when the job is still running at ``a`` (a hit replaces the next tick's request), so its
expected cost is ``P(end > a)``. Greedily, the aim that removes the most expected lag per expected extra
request is added while the sum stays within the budget: a tenth of the requests fixed polling spends on
a job of this kind, more for jobs that end within the first tick or two, where one request is the whole
bill. The ticks themselves stay: a job that ends far from its history (a failure, a stall, an outlier)
is still seen on the tick, never later.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["RenderHistory", "WaitTiming"]

MAX_SAMPLES = 12  # recent jobs only: a model's speed changes with the provider's load and releases
QUANTILES = (*(i / 40 for i in range(1, 40)), 0.99, 1.0)  # candidate aims: every 2.5 % of the end, its top
MAX_AIMS = 6
PROBE_SHARE = 1 / 8  # where a thin history is probed: an eighth of the way to the earliest end seen
MIN_SEEN = 3  # jobs seen running (a bracket with a start) before the history is trusted to know its spread


@dataclass
class WaitTiming:
    """Filled by a wait: when (the caller's clock) the job was last seen unfinished and first seen done."""

    last_unfinished: float | None = None
    completed: float | None = None


def _trimmed(brackets: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Well-formed brackets, without those whose midpoint lies far from the rest (robust: median, MAD)."""
    clean = [(max(0.0, lo), hi) for lo, hi in brackets if hi > 0 and hi > lo][:MAX_SAMPLES]
    if len(clean) < 3:
        return clean
    mids = [(lo + hi) / 2 for lo, hi in clean]
    centre = statistics.median(mids)
    widths = statistics.median(hi - lo for lo, hi in clean)  # a coarse bracket's midpoint is only so precise
    spread = max(1.4826 * statistics.median(abs(m - centre) for m in mids), 0.05 * centre, widths)
    return [b for b, m in zip(clean, mids, strict=True) if abs(m - centre) <= 4 * spread]


def _turnbull(brackets: Sequence[tuple[float, float]], rounds: int = 40) -> list[tuple[float, float, float]]:
    """Where the ends most likely fell, given only brackets: Turnbull's self-consistent estimate.

    The line is cut at every bracket's ends; each piece gets a weight, and each bracket shares its
    one unit of weight among its pieces in proportion to their current weights, until that settles.
    Overlaps gather the weight: a coarse bracket (45, 60] and fine ones (57, 59], (58, 61] agree on
    "near 58", where an even mixture would still spread a third of the weight over 45-57.
    """
    cuts = sorted({x for b in brackets for x in b})
    pieces = list(itertools.pairwise(cuts))
    inside = [[j for j, (a, b) in enumerate(pieces) if lo <= a and b <= hi] for lo, hi in brackets]
    weight = [1.0 / len(pieces)] * len(pieces)
    for _ in range(rounds):
        new = [0.0] * len(pieces)
        for members in inside:
            total = sum(weight[j] for j in members)
            if total <= 0:
                continue
            for j in members:
                new[j] += weight[j] / total
        weight = [w / len(inside) for w in new]
    return [(a, b, w) for (a, b), w in zip(pieces, weight, strict=True) if w > 1e-9]


@dataclass(frozen=True)
class RenderHistory:
    """Brackets ``(lo, hi]`` of recent completions of one kind of job, newest first (seconds since create)."""

    brackets: tuple[tuple[float, float], ...]
    pieces: tuple[tuple[float, float, float], ...] = field(default=(), compare=False, repr=False)
    _plans: dict[tuple[float, float, float, float], tuple[float, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def of(cls, brackets: Sequence[tuple[float, float]]) -> RenderHistory | None:
        """None when there is nothing usable: the schedule then behaves as if there were no history."""
        kept = _trimmed(brackets)
        if not kept:
            return None
        pieces = _turnbull(kept)
        # A few samples understate the spread: the next end may come after all of them, by about the
        # width over the count (the expected gap above the largest of n draws). One more sample's weight
        # goes there, so the last aim is placed a little beyond the latest end seen.
        n = len(kept)
        if n < 3:  # too few to say how far past them the next may end: they are all there is
            return cls(tuple(kept), tuple(pieces))
        core = cls(tuple(kept), tuple(pieces))
        hi = core.quantile(0.999)
        tail = (hi, hi + max((hi - core.quantile(0.001)) / n, 0.005 * hi), 1.0 / (n + 1))
        kept_pieces = [(a, min(b, hi), w) for a, b, w in pieces if a < hi]
        total = sum(w for _, _, w in kept_pieces)
        return cls(tuple(kept), tuple([*((a, b, w / total * n / (n + 1)) for a, b, w in kept_pieces), tail]))

    def cdf(self, x: float) -> float:
        """Share of the history ended by ``x`` seconds after creation."""
        total = 0.0
        for lo, hi, w in self.pieces:
            if x >= hi:
                total += w
            elif x > lo:
                total += w * (x - lo) / (hi - lo)
        return total

    def quantile(self, q: float) -> float:
        lo = self.pieces[0][0]
        hi = self.pieces[-1][1]
        for _ in range(40):
            mid = (lo + hi) / 2
            if self.cdf(mid) < q:
                lo = mid
            else:
                hi = mid
        return hi

    def _lag(self, polls: Sequence[float]) -> float:
        """Expected seconds from the end to the first poll at or after it (``polls`` sorted, covering all)."""
        total = 0.0
        for lo, hi, w in self.pieces:
            prev = float("-inf")
            part = 0.0
            for p in polls:
                a, b = max(lo, prev), min(hi, p)
                if b > a:  # ends in (a, b] are seen at p: mean lag p - (a + b) / 2
                    part += (b - a) * (p - (a + b) / 2)
                prev = p
                if p >= hi:
                    break
            total += w * part / (hi - lo)
        return total

    def _probes(self, offset: float, floor: float, ticks: Sequence[float]) -> list[float]:
        """An early poll while the history is too thin to know its spread (under ``MIN_SEEN`` jobs seen running).

        A kind only ever seen done says "it ended some time before the first poll" and nothing more, and
        one or two narrow brackets say where those jobs ended, not where the next may: the aims fall in
        the middle of the stretch, or all on one earlier end. A poll early on does better: a job still
        running there reports its progress, and where the API reports progress the schedule reads it once
        more and predicts the end from the rate (``PollSchedule``); a job already done is seen early. The
        next jobs of a kind pay one request each for this, outside the plan's budget, until the history
        has ``MIN_SEEN`` jobs seen running; then the plan is the usual one.
        """
        if sum(1 for lo, _ in self.brackets if lo > 0) >= MIN_SEEN:
            return []
        probe = max(offset + floor, PROBE_SHARE * min(hi for _, hi in self.brackets))
        return [] if any(abs(probe - tick) < floor for tick in ticks) else [probe]

    def plan(self, *, offset: float, first: float, cap: float, floor: float) -> tuple[float, ...]:
        """Aimed polls, in seconds since the wait began (``offset`` seconds after the task's creation).

        The fixed ticks are at ``first`` and then every ``cap`` from the wait's start; no aim comes
        within ``floor`` of a tick, of the start, or of another aim.
        """
        key = (round(offset, 3), first, cap, floor)
        cached = self._plans.get(key)
        if cached is not None:
            return cached
        horizon = max(hi for _, hi in self.brackets) + cap
        ticks: list[float] = []
        t = offset + first
        while True:
            ticks.append(t)
            if t >= horizon:
                break
            t = offset + cap * (int((t - offset) / cap + 1e-9) + 1)
        alive = 1.0 - self.cdf(offset)
        if alive <= 0.0:
            return ()
        # Fixed polling's expected requests for a job of this kind (the budget's yardstick).
        fixed = sum(1.0 - self.cdf(tick) for tick in ticks[:-1]) / alive + 1.0
        budget = max(0.1 * fixed, 1.5 - 0.5 * fixed)
        candidates = sorted({self.quantile(q) for q in QUANTILES} | {hi for _, hi in self.brackets})
        candidates = [a for a in candidates if a >= offset + floor and all(abs(a - tick) >= floor for tick in ticks)]
        aims = self._probes(offset, floor, ticks)  # outside the budget: learning the kind's spread
        spent = 0.0
        lag = self._lag(sorted([*ticks, *aims]))
        while len(aims) < MAX_AIMS:
            best: tuple[float, float, float, float] | None = None  # (gain per cost, aim, lag, cost)
            for a in candidates:
                if a in aims or any(abs(a - other) < floor for other in aims):
                    continue
                cost = max((1.0 - self.cdf(a)) / alive, 1e-3)
                if spent + cost > budget:
                    continue
                new_lag = self._lag(sorted([*ticks, *aims, a]))
                gain = lag - new_lag
                if gain > 1e-6 and (best is None or gain / cost > best[0]):
                    best = (gain / cost, a, new_lag, cost)
            if best is None:
                break
            aims.append(best[1])
            lag = best[2]
            spent += best[3]
        planned = tuple(sorted(a - offset for a in aims))
        self._plans[key] = planned
        return planned
