"""The poll schedule: estimates completion from progress, honours Retry-After, stays within bounds."""

from __future__ import annotations

from imagine_agent.models import TaskStatus
from imagine_agent.polling import PollPolicy, PollSchedule


def processing(p: int) -> TaskStatus:
    return TaskStatus(status="processing", progress=p)


def test_backs_off_geometrically_without_progress() -> None:
    s = PollSchedule(PollPolicy(first=1, floor=1, cap=15), started_at=0)
    delays = []
    for t in range(4):
        s.observe(TaskStatus(status="queued"), now=float(t))
        delays.append(s.next_delay(float(t)))
    assert delays == [2.0, 4.0, 8.0, 15.0]


def test_sleeps_until_just_before_estimated_completion() -> None:
    s = PollSchedule(PollPolicy(first=1, floor=0.5, cap=300, approach=0.9), started_at=0)
    s.observe(processing(10), now=10)
    s.observe(processing(30), now=30)  # 1 %/s -> 70 s left
    assert abs(s.next_delay(30) - 63.0) < 1e-9


def test_never_below_floor_or_above_cap() -> None:
    s = PollSchedule(PollPolicy(first=1, floor=2, cap=10), started_at=0)
    s.observe(processing(10), now=10)
    s.observe(processing(99), now=11)
    assert s.next_delay(11) == 2
    s2 = PollSchedule(PollPolicy(first=1, floor=2, cap=10), started_at=0)
    s2.observe(processing(1), now=100)
    assert s2.next_delay(100) == 10


def test_retry_after_wins() -> None:
    s = PollSchedule(PollPolicy(floor=1, cap=10), started_at=0)
    s.observe(processing(50), now=10, retry_after=30)
    assert s.next_delay(10) == 30


def test_scaled_policy() -> None:
    p = PollPolicy(first=2, floor=1, cap=20).scaled(10)
    assert (p.first, p.floor, p.cap) == (0.2, 0.1, 2.0)


def test_scaled_policy_scales_the_blind_limit_too() -> None:
    p = PollPolicy(first=2, floor=1, cap=60, blind=15).scaled(60)
    assert (p.first, p.floor, p.cap, p.blind) == (2 / 60, 1 / 60, 1.0, 0.25)
    assert p.approach == PollPolicy().approach


def test_floor_equal_to_cap_is_a_fixed_interval_poller() -> None:
    """The benchmarks' provider-guidance baseline: 15 s between polls, whatever the progress says."""
    s = PollSchedule(PollPolicy(first=15, floor=15, cap=15), started_at=0)
    readings = [TaskStatus(status="queued"), processing(5), processing(40), processing(80), processing(99)]
    delays = []
    for i, status in enumerate(readings):
        now = 15.0 * (i + 1)
        s.observe(status, now=now)
        delays.append(s.next_delay(now))
    assert delays == [15.0] * len(readings)


def test_one_reading_never_earns_a_sleep_longer_than_blind() -> None:
    # The rate from one reading counts queue time: a guess, so the provider's 15 s still bounds the sleep.
    s = PollSchedule(PollPolicy(first=2, floor=1, cap=60, blind=15), started_at=0)
    s.observe(processing(10), now=30)
    estimate = s.estimate(30)
    assert estimate is not None and not estimate.measured
    assert s.next_delay(30) == 15


def test_an_imprecise_measured_estimate_may_sleep_past_blind_up_to_cap() -> None:
    s = PollSchedule(PollPolicy(first=2, floor=1, cap=60, approach=0.8, blind=15), started_at=0)
    s.observe(processing(10), now=20)
    s.observe(processing(25), now=35)  # 1 %/s: 75 s left, +-(75 + 15) / 15 = 6 s
    estimate = s.estimate(35)
    assert estimate is not None and estimate.measured
    assert abs(estimate.remaining - 75) < 1e-9 and abs(estimate.error - 6) < 1e-9
    assert abs(s.next_delay(35) - 60) < 1e-9  # 0.8 * 75 = 60: over blind, within cap


def test_a_precise_estimate_lands_just_after_completion() -> None:
    s = PollSchedule(PollPolicy(first=2, floor=2, cap=60, blind=15), started_at=0)
    s.observe(processing(10), now=10)
    s.observe(processing(90), now=90)  # 1 %/s: 10 s left, +-(10 + 80) / 80 = 1.125 s, within the floor
    assert abs(s.next_delay(90) - (10 + 1.125)) < 1e-9


def test_an_estimate_less_precise_than_the_floor_approaches_instead() -> None:
    s = PollSchedule(PollPolicy(first=2, floor=1, cap=60, approach=0.8, blind=15), started_at=0)
    s.observe(processing(10), now=10)
    s.observe(processing(90), now=90)  # +-1.125 s > floor 1 s
    assert abs(s.next_delay(90) - 8.0) < 1e-9


def test_a_stalled_job_is_polled_with_a_doubling_delay_bounded_by_blind() -> None:
    s = PollSchedule(PollPolicy(first=2, floor=1, cap=60, blind=15), started_at=0)
    s.observe(processing(0), now=10)
    s.observe(processing(99), now=109)  # 1 %/s: done at 110
    now = 109.0
    delays = []
    for _ in range(6):
        delay = s.next_delay(now)
        delays.append(delay)
        now += delay
        s.observe(processing(99), now=now)  # still 99 %: overdue
    assert delays[0] < 3  # aimed just past the estimate
    assert delays[1:] == [2.0, 4.0, 8.0, 15.0, 15.0]


def test_progress_moving_again_ends_the_overdue_backoff() -> None:
    s = PollSchedule(PollPolicy(first=2, floor=2, cap=60, blind=15), started_at=0)
    s.observe(processing(0), now=0)
    s.observe(processing(90), now=90)
    first = s.next_delay(90)  # precise: aims 10 s + error past the latest reading
    s.observe(processing(90), now=90 + first)  # stalled: overdue once
    assert s.next_delay(90 + first) == 4.0  # floor * 2**1
    now = 90 + first + 4
    s.observe(processing(95), now=now)  # moving again
    rate = 95 / now
    to_finish = 5 / rate
    assert abs(s.next_delay(now) - (to_finish + (to_finish + now) / 95)) < 1e-9
