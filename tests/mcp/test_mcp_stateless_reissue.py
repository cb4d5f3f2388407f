"""Issue 22 item 6: MCP clients of protocol ``2026-07-28`` are stateless; one whose stream broke re-issues
``generate_video`` with a new request id, and that call attaches to the paid job: one payment.

The official Python SDK's ``Client`` at ``mode="2026-07-28"`` (no initialize handshake, no session) drives
``imagine-agent mcp --transport streamable-http`` in its own process, paying a sandbox in this process. The
payment is keyed on the request (prompt, settings), never on the MCP request id.
"""

from __future__ import annotations

import json

import anyio
import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from imagine_agent.sandbox import SandboxServer
from tests.mcp.test_mcp_http_cancel import TOKEN, mcp_http_server  # noqa: F401  (the fixture)

PROTOCOL = "2026-07-28"
ARGS = {"prompt": "a comet over a frozen lake", "duration": 2}


def _text(result: object) -> str:
    content = getattr(result, "content", [])
    structured = getattr(result, "structured_content", None) or getattr(result, "structuredContent", None)
    return json.dumps(structured) if structured else " ".join(getattr(c, "text", "") for c in content)


async def test_a_reissued_call_after_a_broken_stream_attaches_to_the_paid_job(
    mcp_http_server: tuple[SandboxServer, str],  # noqa: F811
) -> None:
    sandbox, url = mcp_http_server
    paid = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        if sandbox.state.settlements():
            paid.set()

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    async with Client(streamable_http_client(url, http_client=http), mode=PROTOCOL) as first:
        assert first.protocol_version == PROTOCOL
        async with anyio.create_task_group() as group:

            async def call() -> None:
                await first.call_tool("generate_video", ARGS, read_timeout_seconds=60, progress_callback=on_progress)

            group.start_soon(call)
            with anyio.fail_after(60):
                await paid.wait()
            group.cancel_scope.cancel()  # the stream breaks mid-call: no answer reached the client
    (settled,) = sandbox.state.settlements()

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    async with Client(streamable_http_client(url, http_client=http), mode=PROTOCOL) as again:
        result = await again.call_tool("generate_video", ARGS, read_timeout_seconds=60)  # a new request id
    text = _text(result)
    assert settled.task_id and settled.task_id in text  # attached to the job already paid for
    assert len(sandbox.state.settlements()) == 1  # one payment
