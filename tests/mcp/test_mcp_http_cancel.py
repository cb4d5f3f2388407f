"""``imagine-agent mcp --transport streamable-http`` as its own process, paying a sandbox in this process, so
that the status requests behind a call are seen at the sandbox: a cancelled call stops polling at once; a
connection dropped without a cancel stops at the call's wait bound (``IMAGINE_MCP_WAIT_SECONDS``)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from imagine_agent.sandbox import SandboxConfig, SandboxServer
from tests.embedded import PYTHON, subprocess_env

TOKEN = "test-token-" + "k" * 32
KEY = "0x" + "6a" * 32


class Reads:
    def __init__(self, sandbox: SandboxServer) -> None:
        self.counts: dict[str, int] = {}
        original = sandbox.state.observe

        def observe(task_id: str, *, peek: bool = False) -> Any:
            if not peek:
                self.counts[task_id] = self.counts.get(task_id, 0) + 1
            return original(task_id, peek=peek)

        sandbox.state.observe = observe  # type: ignore[method-assign]

    def total(self) -> int:
        return sum(self.counts.values())


@pytest.fixture
def mcp_http_server(tmp_path: Path) -> Iterator[tuple[SandboxServer, str]]:
    with SandboxServer(SandboxConfig(speed=5)) as sandbox:  # jobs of 12-36 s: longer than every test here
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = subprocess_env(
            tmp_path,
            IMAGINE_BASE_URL=sandbox.url,
            IMAGINE_PRIVATE_KEY=KEY,
            IMAGINE_MCP_TOKEN=TOKEN,
            IMAGINE_MCP_WAIT_SECONDS="1.5",
            IMAGINE_POLL_FIRST="0.1",
            IMAGINE_POLL_FLOOR="0.1",
            IMAGINE_POLL_CAP="0.2",
        )
        errlog = (tmp_path / "err.txt").open("w")
        proc = subprocess.Popen(
            [PYTHON, "-m", "imagine_agent", "mcp", "--transport", "streamable-http", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=errlog,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "err.txt").read_text()
                    time.sleep(0.05)
            yield sandbox, f"http://127.0.0.1:{port}/mcp"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _settled(reads: Reads, seconds: float) -> tuple[int, int]:
    """Status reads now, and after ``seconds`` more (several poll intervals)."""
    before = reads.total()
    time.sleep(seconds)
    return before, reads.total()


async def test_a_cancelled_http_call_stops_polling(mcp_http_server: tuple[SandboxServer, str]) -> None:
    sandbox, url = mcp_http_server
    reads = Reads(sandbox)
    polled = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        polled.set()

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    async with Client(streamable_http_client(url, http_client=http)) as client:
        async with anyio.create_task_group() as group:

            async def call() -> None:
                await client.call_tool(
                    "generate_video",
                    {"prompt": "a comet", "duration": 2},
                    read_timeout_seconds=60,
                    progress_callback=on_progress,
                )

            group.start_soon(call)
            await polled.wait()
            group.cancel_scope.cancel()
        before, after = await anyio.to_thread.run_sync(_settled, reads, 1.0)
        assert reads.total() > 0 and after == before
        assert len(sandbox.state.settlements()) == 1


def test_a_dropped_connection_stops_polling_at_the_wait_bound(mcp_http_server: tuple[SandboxServer, str]) -> None:
    sandbox, url = mcp_http_server
    reads = Reads(sandbox)
    headers = {
        "authorization": f"Bearer {TOKEN}",
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
    }
    init = httpx.post(
        url,
        headers=headers,
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "1"},
            },
        },
    )
    session = {**headers, "mcp-session-id": init.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
    httpx.post(url, headers=session, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {
            "name": "generate_video",
            "arguments": {"prompt": "a comet", "duration": 2},
            "_meta": {"progressToken": "p"},
        },
    }
    with httpx.Client(timeout=30) as client, client.stream("POST", url, headers=session, json=call) as response:
        assert response.status_code == 200
        next(line for line in response.iter_lines() if "notifications/progress" in line)
    # The connection is gone without a cancel: the call still ends by its bound (1.5 s here), long before
    # the job does, and polls no more.
    time.sleep(2.0)
    before, after = _settled(reads, 1.0)
    assert before > 0 and after == before
    [job] = [sandbox.state.job(t) for t in reads.counts]
    assert job is not None and sandbox.state.now() < job.created_at + job.run_seconds  # still rendering
