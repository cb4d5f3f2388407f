"""The connection pool both engines use: one connection per thread at a time, a few kept idle."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

_MAX_IDLE_CONNECTIONS = 8


_C = TypeVar("_C")


class _Pool(Generic[_C]):
    """Hands each connection to one thread at a time; keeps a few idle ones; closes all on ``close``.

    A pool rather than thread-locals, so threads that come and go (``asyncio.to_thread``) do not leave
    connections behind.
    """

    def __init__(self, connect: Callable[[], _C], close: Callable[[_C], None]) -> None:
        self._connect = connect
        self._close = close
        self._idle: list[_C] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[_C]:
        with self._lock:
            if self._closed:
                raise ValueError("this ledger is closed")
            if self._pid != os.getpid():  # forked: the parent's connections are not ours to use
                self._idle, self._pid = [], os.getpid()
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
        healthy = False
        try:
            yield conn
            healthy = True  # after an error the connection may be mid-transaction or broken: drop it
        finally:
            with self._lock:
                keep = healthy and not self._closed and len(self._idle) < _MAX_IDLE_CONNECTIONS
                if keep:
                    self._idle.append(conn)
            if not keep:
                self._close(conn)

    def close(self) -> None:
        with self._lock:
            self._closed, idle, self._idle = True, self._idle, []
        for conn in idle:
            self._close(conn)
