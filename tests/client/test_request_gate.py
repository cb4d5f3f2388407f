"""The async client's turn-taking: thousands of polled jobs never pile up inside httpx's connection pool.

httpcore rescans its queue of waiting requests whenever a connection frees, so a deep queue there costs CPU
quadratic in its length (the 5,000-job scale run spent its time there), and a request's timeout would run
while it waited for a connection. The client lets ``MAX_CONCURRENT_REQUESTS`` in at once; the rest wait
their turn ahead of httpx, and a request's own timeout starts when it is handed over.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from imagine_agent.client import MAX_CONCURRENT_REQUESTS, AsyncImagineClient
from imagine_agent.errors import ImagineTimeoutError

PROCESSING = {"status": "processing", "progress": 40}


class Counting:
    """A server stand-in that answers each status read after ``delay`` seconds and counts reads in flight."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.in_flight = self.peak = self.served = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        self.served += 1
        return httpx.Response(202, json=PROCESSING)


async def test_requests_take_turns_and_each_timeout_starts_when_it_is_sent() -> None:
    server = Counting(delay=0.05)
    reads = 20 * MAX_CONCURRENT_REQUESTS  # twenty waves of 0.05 s: 1 s in all, twice each request's timeout
    async with AsyncImagineClient("https://imagine.test", transport=httpx.MockTransport(server), timeout=0.5) as client:
        answers = await asyncio.gather(*(client.status(f"task-{i}") for i in range(reads)))
    assert [a.status for a in answers] == ["processing"] * reads  # none timed out waiting for its turn
    assert server.served == reads
    assert server.peak == MAX_CONCURRENT_REQUESTS  # never more in httpx at once, and the gate is used fully


async def test_a_wait_whose_deadline_passes_while_queued_ends_in_its_timeout_not_later() -> None:
    """The turn is bounded by the caller's deadline: a wait that cannot get a turn in time says so."""
    server = Counting(delay=0.3)
    async with AsyncImagineClient("https://imagine.test", transport=httpx.MockTransport(server)) as client:
        hogs = [asyncio.create_task(client.status(f"hog-{i}")) for i in range(3 * MAX_CONCURRENT_REQUESTS)]
        await asyncio.sleep(0.01)
        with pytest.raises(ImagineTimeoutError):
            await client.job("late-task").wait(timeout=0.2, initial_delay=0)
        await asyncio.gather(*hogs)
    assert server.peak <= MAX_CONCURRENT_REQUESTS
