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
