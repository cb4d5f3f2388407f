"""Polling from history: the done-when of issue 23, on a simulated clock through the real ``wait_flow``.

Jobs of one kind run one after another; each is polled with the brackets (last seen unfinished, first
seen done) of those before it, as the service reads them from the ledger. No wall clock anywhere.
"""

from __future__ import annotations

import dataclasses
import statistics

from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.shapes import SHAPES, Job, simulate, spread_jobs, with_history
from imagine_agent.history import RenderHistory, WaitTiming
from imagine_agent.polling import PollPolicy

OURS = PollPolicy().scaled(10)  # IMAGINE_POLL_FIRST = IMAGINE_POLL_CAP = 1.5
FIXED = PollPolicy(first=1.5, floor=1.5, cap=1.5)
FIXED15 = PollPolicy(first=15, floor=15, cap=15)
NO_PROGRESS = next(s for s in SHAPES if s.name == "no progress field")
EASE_IN = next(s for s in SHAPES if s.name.startswith("ease-in"))


def test_after_six_jobs_without_progress_lag_is_under_a_third_of_the_tick_at_the_ticks_requests() -> None:
    lags, fixed_lags, requests, fixed_requests = [], [], [], []
    for seed in range(6):  # six sequences: 6 jobs build the history, the next 14 are measured
        jobs = spread_jobs(NO_PROGRESS, 20, centre=6.0, spread=0.05, seed=seed)
        ours = with_history(jobs, OURS, learn=6)
        fixed = [simulate(j, FIXED) for j in jobs[6:]]
        lags += [o.lag for o in ours]
        fixed_lags += [o.lag for o in fixed]
        requests += [o.requests for o in ours]
        fixed_requests += [o.requests for o in fixed]
    assert statistics.fmean(lags) <= 0.3 * statistics.fmean(fixed_lags)
    assert max(lags) <= max(fixed_lags) + 1e-9
    assert sum(requests) <= 1.1 * sum(fixed_requests)
    assert all(lag >= 0 for lag in lags)


def test_without_history_it_polls_on_the_tick_exactly() -> None:
    jobs = spread_jobs(NO_PROGRESS, 6, centre=6.0, spread=0.05)
    for job in jobs:
        assert simulate(job, OURS).polls == simulate(job, FIXED).polls


def test_the_ease_in_40_s_job_is_seen_within_2_s_at_the_ticks_requests() -> None:
    job = Job(EASE_IN, 40.0)
    ours, fixed = simulate(job, PollPolicy()), simulate(job, PollPolicy(first=15, floor=15, cap=15))
    assert 0 <= ours.lag <= 2.0
    assert ours.requests <= fixed.requests
    assert fixed.lag == 5.0


def test_a_t3_curve_is_seen_soon_from_two_readings() -> None:
    t3 = dataclasses.replace(EASE_IN, curve=lambda x: x**3)
    job = Job(t3, 40.0)
    ours, fixed = simulate(job, PollPolicy()), simulate(job, PollPolicy(first=15, floor=15, cap=15))
    assert 0 <= ours.lag <= 2.0 and ours.requests <= fixed.requests


def _history(ends: list[float]) -> RenderHistory:
    history = RenderHistory.of([(end - 0.5, end) for end in ends])
    assert history is not None
    return history


def test_an_outlier_costs_at_most_one_tick_and_never_a_later_sighting() -> None:
    history = _history([60.0, 60.5, 61.0, 59.5, 60.2, 60.8])
    aims = history.plan(offset=0, first=15, cap=15, floor=1)
    assert aims and all(55 < a < 66 for a in aims)
    for end in (20.0, 44.0, 58.0, 70.0, 140.0):  # early and late outliers, and one in the window
        job = Job(NO_PROGRESS, end)
        ours, fixed = simulate(job, PollPolicy(), aims=aims), simulate(job, PollPolicy(15, 15, 15))
        assert ours.polls[-1] <= fixed.polls[-1] + 1e-9  # never seen later than the tick
        assert ours.requests <= fixed.requests + len(aims)


def test_a_failed_job_is_seen_on_the_tick() -> None:
    failing = next(s for s in SHAPES if s.name == "fails midway")
    aims = _history([60.0, 61.0, 62.0]).plan(offset=0, first=15, cap=15, floor=1)
    job = Job(failing, 120.0)  # fails at 60 s
    ours, fixed = simulate(job, PollPolicy(), aims=aims), simulate(job, PollPolicy(15, 15, 15))
    assert ours.polls[-1] <= fixed.polls[-1]


def test_failures_outliers_and_garbage_do_not_shape_the_history() -> None:
    assert RenderHistory.of([]) is None
    assert RenderHistory.of([(5.0, 3.0), (-1.0, -0.5)]) is None  # no bracket ends after it begins
    history = RenderHistory.of([(59.0, 60.0), (60.0, 61.0), (58.5, 59.5), (60.5, 61.5), (590.0, 600.0)])
    assert history is not None and all(hi < 100 for _, hi in history.brackets)


def test_the_timing_brackets_the_end() -> None:
    timing = WaitTiming()
    outcome = simulate(Job(NO_PROGRESS, 50.0), PollPolicy(), timing=timing)
    assert timing.completed == outcome.polls[-1] and timing.last_unfinished == outcome.polls[-2]
    assert timing.last_unfinished < 50.0 <= timing.completed


@settings(max_examples=150, deadline=None)
@given(
    ends=st.lists(st.floats(5.0, 300.0), min_size=1, max_size=12),
    width=st.floats(0.1, 15.0),
    end=st.floats(1.0, 400.0),
    offset=st.sampled_from([0.0, 3.0]),
)
def test_with_any_history_never_later_than_the_fixed_tick_and_no_wait_above_the_cap(
    ends: list[float], width: float, end: float, offset: float
) -> None:
    """The property of ``test_polling`` with history: every wait ends by the fixed tick's next poll."""
    history = RenderHistory.of([(max(0.0, e - width), e) for e in ends])
    assert history is not None
    aims = history.plan(offset=offset, first=15, cap=15, floor=1)
    assert list(aims) == sorted(aims) and all(a >= 1 for a in aims)
    job = Job(NO_PROGRESS, end)
    ours, fixed = simulate(job, PollPolicy(), aims=aims), simulate(job, PollPolicy(15, 15, 15))
    assert ours.polls[-1] <= fixed.polls[-1] + 1e-6
    assert all(0 < d <= 15.0 + 1e-9 for d in ours.delays)
    ticks = {round(t, 6) for t in fixed.polls}
    assert ours.requests <= fixed.requests + sum(1 for p in ours.polls[:-1] if round(p, 6) not in ticks)


def test_an_overloaded_server_is_given_the_time_its_retry_after_asks_for() -> None:
    """429/503 without a status body: the next poll waits Retry-After (capped), not the short backoff."""
    import httpx

    from imagine_agent.flows import Sleep, wait_flow

    now = 0.0
    answers = [
        httpx.Response(503, headers={"retry-after": "40"}),
        httpx.Response(429, headers={"retry-after": "7"}),
        httpx.Response(
            200,
            json={
                "status": "completed",
                "progress": 100,
                "result": {"generation": {"video": {"url": "https://cdn.test/v.mp4"}}},
            },
        ),
    ]
    request = httpx.Request("GET", "http://imagine.test/generation/t/status")
    flow = wait_flow(lambda: request, "t", policy=PollPolicy(), timeout=None, initial_delay=0, clock=lambda: now)
    sleeps: list[float] = []
    step = next(flow)
    try:
        while True:
            if isinstance(step, Sleep):
                sleeps.append(step.seconds)
                now += step.seconds
                step = flow.send(None)
            elif isinstance(step, httpx.Request):
                answer = answers.pop(0)
                answer.request = step
                step = flow.send(answer)
            else:
                step = flow.send(None)
    except StopIteration:
        pass
    assert sleeps == [40.0, 7.0]


def test_the_second_job_of_a_kind_is_seen_soon_where_progress_speaks() -> None:
    """`generate` against `sandbox --speed 30`: renders of 2-6 s, the CLI's unscaled 15 s tick.

    The first job is seen on the tick and leaves only "ended within 15 s"; the second probes early, reads
    its progress twice and is seen within a second of its end, at three requests at most.
    """
    linear = next(s for s in SHAPES if s.name == "linear")
    first = simulate(Job(linear, 3.0), PollPolicy(), timing=(timing := WaitTiming()))
    assert first.polls == (15.0,) and timing.last_unfinished is None
    history = RenderHistory.of([(0.0, first.polls[-1])])
    assert history is not None
    aims = history.plan(offset=0.0, first=15, cap=15, floor=1)
    for run in (2.0, 2.4, 3.1, 3.9, 4.6, 5.2, 6.0):
        second = simulate(Job(linear, run), PollPolicy(), aims=aims)
        assert 0 <= second.lag <= 1.0, (run, second.polls)
        assert second.requests <= 3


def test_a_thin_history_probes_early_once_per_job_until_three_jobs_were_seen_running() -> None:
    """The probe is one poll an eighth of the way to the earliest end seen; without a progress field it
    only narrows the next bracket. It stops once three jobs of the kind were seen running."""
    aims = RenderHistory.of([(0.0, 15.0)]).plan(offset=0.0, first=15, cap=15, floor=1)  # type: ignore[union-attr]
    assert aims[0] == 15.0 / 8
    for run in (1.0, 2.5, 8.0, 14.0):
        job = Job(NO_PROGRESS, run)
        ours, fixed = simulate(job, PollPolicy(), aims=aims), simulate(job, FIXED15)
        assert ours.polls[-1] <= fixed.polls[-1] and ours.requests <= fixed.requests + len(aims)
    seen_running = [(5.4, 5.9), (5.6, 6.1), (5.5, 6.0)]
    for count in (1, 2):
        thin = RenderHistory.of(seen_running[:count])
        assert thin is not None and thin.plan(offset=0.0, first=15, cap=15, floor=1)[0] == 1.0  # offset + floor
    settled = RenderHistory.of(seen_running)
    assert settled is not None and min(settled.plan(offset=0.0, first=15, cap=15, floor=1)) > 5.0
