"""Job handles (like replicate's ``Prediction``): ``Job`` and ``AsyncJob`` side by side.

A create returns one; it waits, streams progress and downloads through the client that made it.
The handles name the client by what they use of it (``JobClient`` / ``AsyncJobClient``), so this
module does not import ``client.py``, which imports it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .flows import Flow, PaymentInfo
from .history import RenderHistory, WaitTiming
from .models import GenerationResult, TaskStatus
from .polling import PollPolicy

__all__ = ["AsyncJob", "AsyncJobClient", "Downloads", "Job", "JobClient"]

T = TypeVar("T")


@dataclass(frozen=True)
class Downloads:
    video: Path
    preview: Path | None


class _ClientBase(Protocol):
    """What a job handle reads of the client that made it (``client._Base``)."""

    poll: PollPolicy
    clock: Callable[[], float]

    def _wait(
        self, task_id: str, timeout: float | None, initial_delay: float, job: Job | AsyncJob | None = None
    ) -> Flow[TaskStatus]: ...


class JobClient(_ClientBase, Protocol):
    """What ``Job`` uses of an ``ImagineClient``."""

    def _iterate(self, flow: Flow[T], result: list[T]) -> Iterator[TaskStatus]: ...

    def status(self, task_id: str) -> TaskStatus: ...

    def download(
        self, status: TaskStatus, directory: str | Path, *, name: str = "video", include_preview: bool = True
    ) -> Downloads: ...


class AsyncJobClient(_ClientBase, Protocol):
    """What ``AsyncJob`` uses of an ``AsyncImagineClient``."""

    def _iterate(self, flow: Flow[T], result: list[T]) -> AsyncIterator[TaskStatus]: ...

    async def status(self, task_id: str) -> TaskStatus: ...

    async def download(
        self, status: TaskStatus, directory: str | Path, *, name: str = "video", include_preview: bool = True
    ) -> Downloads: ...


class Job:
    """A submitted generation (like replicate's ``Prediction``): wait, stream updates, download."""

    def __init__(self, client: JobClient, task_id: str, payment: PaymentInfo | None) -> None:
        self.client = client
        self.task_id = task_id
        self.payment = payment
        self.last: TaskStatus | None = None
        # How long jobs of this kind took here (set by the service from the ledger), and the task's
        # creation on the client's clock: the poller aims from them. ``timing`` brackets this one's end.
        self.history: RenderHistory | None = None
        self.created_at: float | None = None  # known for a job this client created; else from the ledger
        self.timing = WaitTiming()

    def __repr__(self) -> str:
        state = self.last.status if self.last else "submitted"
        return f"Job(task_id={self.task_id!r}, status={state!r})"

    def created_now(self) -> Job:
        self.created_at = self.client.clock()
        return self

    def status(self) -> TaskStatus:
        self.last = self.client.status(self.task_id)
        return self.last

    def iter_updates(self, *, timeout: float | None = None, initial_delay: float | None = None) -> Iterator[TaskStatus]:
        """Yield each change of status or progress until completed; raises on failed/not found/timeout."""
        delay = self.client.poll.first if initial_delay is None else initial_delay
        result: list[TaskStatus] = []
        for status in self.client._iterate(self.client._wait(self.task_id, timeout, delay, self), result):
            self.last = status
            yield status
        self.last = result[0]

    def wait(
        self,
        *,
        timeout: float | None = None,
        on_update: Callable[[TaskStatus], None] | None = None,
        initial_delay: float | None = None,
    ) -> TaskStatus:
        for status in self.iter_updates(timeout=timeout, initial_delay=initial_delay):
            if on_update is not None:
                on_update(status)
        assert self.last is not None
        return self.last

    def result(self, *, timeout: float | None = None) -> GenerationResult:
        status = self.last if self.last and self.last.status == "completed" else self.wait(timeout=timeout)
        assert status.result is not None
        return status.result

    def download(self, directory: str | Path, *, include_preview: bool = True) -> Downloads:
        status = self.last if self.last and self.last.status == "completed" else self.wait()
        return self.client.download(status, directory, name=self.task_id, include_preview=include_preview)


class AsyncJob:
    """Async job handle (like fal's request handles): ``async for status in job``, ``await job.wait()``."""

    def __init__(self, client: AsyncJobClient, task_id: str, payment: PaymentInfo | None) -> None:
        self.client = client
        self.task_id = task_id
        self.payment = payment
        self.last: TaskStatus | None = None
        # How long jobs of this kind took here (set by the service from the ledger), and the task's
        # creation on the client's clock: the poller aims from them. ``timing`` brackets this one's end.
        self.history: RenderHistory | None = None
        self.created_at: float | None = None  # known for a job this client created; else from the ledger
        self.timing = WaitTiming()

    def __repr__(self) -> str:
        state = self.last.status if self.last else "submitted"
        return f"AsyncJob(task_id={self.task_id!r}, status={state!r})"

    def created_now(self) -> AsyncJob:
        self.created_at = self.client.clock()
        return self

    async def status(self) -> TaskStatus:
        self.last = await self.client.status(self.task_id)
        return self.last

    async def iter_updates(
        self, *, timeout: float | None = None, initial_delay: float | None = None
    ) -> AsyncIterator[TaskStatus]:
        delay = self.client.poll.first if initial_delay is None else initial_delay
        result: list[TaskStatus] = []
        async for status in self.client._iterate(self.client._wait(self.task_id, timeout, delay, self), result):
            self.last = status
            yield status
        self.last = result[0]

    def __aiter__(self) -> AsyncIterator[TaskStatus]:
        return self.iter_updates()

    async def wait(
        self,
        *,
        timeout: float | None = None,
        on_update: Callable[[TaskStatus], Any] | None = None,
        initial_delay: float | None = None,
    ) -> TaskStatus:
        async for status in self.iter_updates(timeout=timeout, initial_delay=initial_delay):
            if on_update is not None:
                maybe = on_update(status)
                if asyncio.iscoroutine(maybe):
                    await maybe
        assert self.last is not None
        return self.last

    async def result(self, *, timeout: float | None = None) -> GenerationResult:
        status = self.last if self.last and self.last.status == "completed" else await self.wait(timeout=timeout)
        assert status.result is not None
        return status.result

    async def download(self, directory: str | Path, *, include_preview: bool = True) -> Downloads:
        status = self.last if self.last and self.last.status == "completed" else await self.wait()
        return await self.client.download(status, directory, name=self.task_id, include_preview=include_preview)
