"""Running the sandbox over real HTTP: a background-thread server for tests and demos, and the CLI's ``run``."""

from __future__ import annotations

import logging
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette

from .app import create_app
from .config import SandboxConfig
from .responses import quiet_dropped_connections
from .state import Sandbox

__all__ = ["DEFAULT_PORT", "SandboxServer", "run"]

DEFAULT_PORT = 8402
log = logging.getLogger("imagine_agent.sandbox")


def _uvicorn_config(app: Starlette, **kwargs: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        lifespan="off",
        ws="none",  # plain HTTP only: no websockets protocol to import (0.03 s in every process with a sandbox)
        timeout_graceful_shutdown=1,  # a huge_download stream must not hold shutdown hostage
        **kwargs,
    )


class SandboxServer:
    """The sandbox on a free loopback port, served by real uvicorn in a daemon thread.

    ``with SandboxServer() as server: httpx.get(server.url + "/supported")``. Socket bound up front, so
    ``url`` is known before the thread starts and start-up takes milliseconds. Verifying a payment needs no
    heavy import (the sandbox's own EIP-712 recovery, ``eip712.py``), so nothing is warmed up ahead of it.
    """

    def __init__(self, config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = create_app(config)
        self.state: Sandbox = self.app.state.sandbox
        self.host = host
        self._requested_port = port
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("the sandbox server is not running: call start() or use it as a context manager")
        port: int = self._socket.getsockname()[1]
        return port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> SandboxServer:
        if self._thread is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and without
        # it every keep-alive response waits ~40 ms for a delayed ACK (Nagle).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self._socket = sock
        quiet_dropped_connections()
        config = _uvicorn_config(self.app, log_config=None, log_level="warning", access_log=False)
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"imagine-sandbox:{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the sandbox server failed to start")
            time.sleep(0.002)
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout=5)
            if thread.is_alive():
                server.force_exit = True
                thread.join(timeout=5)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
        self.state.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._socket is not None else "stopped"
        return f"SandboxServer({where})"


def run(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    config: SandboxConfig | None = None,
    *,
    log_level: str = "info",
    sock: socket.socket | None = None,
) -> None:
    """Serve the sandbox until interrupted (Ctrl-C, SIGTERM), then return. What ``imagine-agent sandbox`` calls.

    ``sock``: a socket already bound to ``host:port`` (the CLI binds it first, so ``--port 0`` is served on
    the port it printed, and no other process can take the port in between)."""
    app = create_app(config)
    server = uvicorn.Server(_uvicorn_config(app, host=host, port=port, log_level=log_level))
    quiet_dropped_connections()  # after uvicorn.Config has configured logging
    log.warning("Imagine API sandbox on http://%s:%d: simulated USDC, no real money moves", host, port)
    try:
        server.run(sockets=None if sock is None else [sock])
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after shutting down gracefully: that is our exit
        pass
    finally:
        app.state.sandbox.close()
