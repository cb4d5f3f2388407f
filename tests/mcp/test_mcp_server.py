"""The MCP server, verified with the official ``mcp`` SDK's own clients (stdio subprocess, HTTP, in-process)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp.client import Client, ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from imagine_agent import mcp_server
from imagine_agent.config import Settings
from imagine_agent.mcp_server import create_server
from imagine_agent.sandbox import SandboxConfig, SandboxServer
from imagine_agent.service import ImagineService
from tests.embedded import PYTHON, SPEED, subprocess_env

KEY = "0x" + "5d" * 32
TOOLS = ["budget_status", "generate_video", "quote_video", "video_status", "wait_for_video"]


def test_public_api_is_pinned() -> None:
    assert mcp_server.__all__ == ["create_server", "main", "serve"]


def _resource(read: Any) -> str:
    text: str = read.contents[0].text
    return text


def _text(result: Any) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


async def test_stdio_end_to_end_pays_once_with_progress(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=PYTHON, args=["-m", "imagine_agent.mcp_server"], env=subprocess_env(tmp_path), cwd=str(tmp_path)
    )
    with (tmp_path / "server-stderr.txt").open("w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            assert sorted(t.name for t in (await session.list_tools()).tools) == TOOLS

            quote = await session.call_tool("quote_video", {"prompt": "a kite over dunes", "duration": 2})
            assert not quote.is_error and quote.structured_content is not None
            assert quote.structured_content["amount"] == "250000" and quote.structured_content["allowed"]

            updates: list[tuple[float, float | None, str | None]] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                updates.append((progress, total, message))

            result = await session.call_tool(
                "generate_video", {"prompt": "a kite over dunes", "duration": 2}, progress_callback=on_progress
            )
            assert not result.is_error, _text(result)
            out = result.structured_content
            assert out is not None and out["status"] == "completed" and out["paid"]["amount"] == "250000"
            assert Path(out["videoPath"]).is_relative_to(tmp_path) and Path(out["videoPath"]).stat().st_size > 0
            assert out["sandbox"] is True and out["budget"]["daily"] == str(20_000_000 - 250_000)
            assert len(updates) >= 2 and updates[-1] == (100.0, 100.0, "completed")
            assert [u[0] for u in updates] == sorted(u[0] for u in updates)

            status = await session.call_tool("video_status", {"task_id": out["taskId"]})
            assert status.structured_content is not None and status.structured_content["status"] == "completed"

            receipts = json.loads(_resource(await session.read_resource("imagine://receipts")))
            assert [(p["taskId"], p["amount"], p["state"]) for p in receipts["payments"]] == [
                (out["taskId"], "250000", "paid")
            ]
            budget = json.loads(_resource(await session.read_resource("imagine://budget")))
            assert budget["spent"] == "250000" and budget["frozen"] is False
            pending = json.loads(_resource(await session.read_resource("imagine://videos/pending")))
            assert pending == {"tasks": []}

            bad = await session.call_tool("generate_video", {"prompt": "   ", "duration": 2})
            assert bad.is_error and "InvalidRequestError" in _text(bad) and "prompt is empty" in _text(bad)
            assert "Traceback" not in _text(bad)
    stderr = (tmp_path / "server-stderr.txt").read_text()
    assert "SANDBOX" in stderr
    # Quiet logs: no line per HTTP request or per MCP message on the server's output.
    assert "HTTP Request" not in stderr and "Processing request" not in stderr and " INFO " not in stderr, stderr


async def test_cli_mcp_command_serves_stdio(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=PYTHON, args=["-m", "imagine_agent", "mcp"], env=subprocess_env(tmp_path), cwd=str(tmp_path)
    )
    async with (
        stdio_client(params, errlog=(tmp_path / "err.txt").open("w")) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.call_tool("budget_status", {})
        assert not result.is_error and result.structured_content is not None
        assert result.structured_content["caps"]["perCall"] == "5000000"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class HttpServer:
    """``imagine-agent mcp --transport streamable-http`` as a subprocess on a free loopback port."""

    def __init__(self, tmp_path: Path, *args: str, **env: str) -> None:
        self.port = _free_port()
        self.stderr = tmp_path / "err.txt"
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "imagine_agent", "mcp", "--transport", "streamable-http", "--port", str(self.port), *args],
            env=subprocess_env(tmp_path, **env),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr.open("w"),
        )
        self.url = f"http://127.0.0.1:{self.port}/mcp"

    def __enter__(self) -> HttpServer:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                assert self.proc.poll() is None and time.monotonic() < deadline, self.stderr.read_text()
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def client(self, token: str | None) -> Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return Client(streamable_http_client(self.url, http_client=httpx2.AsyncClient(headers=headers, timeout=60)))

    def status_without(self, header: str | None) -> int:
        headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        if header:
            headers["authorization"] = header
        return httpx.post(self.url, headers=headers, content=b'{"jsonrpc":"2.0","id":1,"method":"ping"}').status_code


async def _quote_over(server: HttpServer, token: str | None) -> None:
    async with server.client(token) as client:
        result = await client.call_tool("quote_video", {"prompt": "a lantern", "duration": 1})
        assert not result.is_error and result.structured_content is not None
        assert result.structured_content["amount"] == "125000"


async def test_streamable_http_generates_and_prints_a_token_when_none_is_given(tmp_path: Path) -> None:
    with HttpServer(tmp_path) as server:
        found = re.search(r"Authorization: Bearer (\S+)", server.stderr.read_text())
        assert found, server.stderr.read_text()
        token = found.group(1)
        assert len(token) >= 32
        assert server.status_without(None) == 401
        assert server.status_without("Bearer wrong-token") == 401
        assert server.status_without(f"Basic {token}") == 401
        await _quote_over(server, token)


async def test_streamable_http_token_from_the_environment(tmp_path: Path) -> None:
    with HttpServer(tmp_path, IMAGINE_MCP_TOKEN="operator-chosen-token-0123456789") as server:
        assert "operator-chosen-token" not in server.stderr.read_text()  # a chosen token is not echoed
        assert server.status_without(None) == 401
        await _quote_over(server, "operator-chosen-token-0123456789")


async def test_streamable_http_without_a_token_only_on_purpose(tmp_path: Path) -> None:
    with HttpServer(tmp_path, "--no-auth") as server:
        assert "no bearer token" in server.stderr.read_text()
        await _quote_over(server, None)


async def test_refusals_are_error_results_without_secrets(tmp_path: Path) -> None:
    """Real key and base URL (a sandbox on loopback): over-cap, kill switch and bad ids never leak the key."""
    with (
        SandboxServer(SandboxConfig(speed=float(SPEED))) as sandbox,
        ImagineService.create(
            Settings(
                base_url=sandbox.url,
                private_key=KEY,
                data_dir=tmp_path,
                max_per_call="0.5",
                poll_first=0.05,
                poll_floor=0.05,
                poll_cap=0.2,
            )
        ) as service,
    ):
        async with Client(create_server(service)) as client:
            outputs: list[str] = []

            over = await client.call_tool("generate_video", {"prompt": "a long storm", "duration": 8})
            outputs.append(_text(over))
            assert over.is_error and "over the per-call cap" in _text(over), _text(over)

            paid = await client.call_tool("generate_video", {"prompt": "a short storm", "duration": 1, "wait": False})
            assert not paid.is_error and paid.structured_content is not None
            outputs.append(json.dumps(paid.structured_content))

            local = await client.call_tool("quote_video", {"prompt": "x", "image": str(tmp_path / "ledger.sqlite3")})
            outputs.append(_text(local))
            assert local.is_error and "not a file path" in _text(local)

            bad_id = await client.call_tool("video_status", {"task_id": "../etc/passwd"})
            outputs.append(_text(bad_id))
            assert bad_id.is_error and "task_id" in _text(bad_id) and "pattern" in _text(bad_id)

            service.freeze("test")
            frozen = await client.call_tool("generate_video", {"prompt": "another storm", "duration": 1})
            outputs.append(_text(frozen))
            assert frozen.is_error and "kill switch" in _text(frozen)

            waited = await client.call_tool("wait_for_video", {"task_id": paid.structured_content["taskId"]})
            assert not waited.is_error and waited.structured_content is not None
            assert Path(waited.structured_content["videoPath"]).is_file()
            outputs.append(json.dumps(waited.structured_content))

            for uri in ("imagine://receipts", "imagine://budget", "imagine://videos/pending"):
                outputs.append(_resource(await client.read_resource(uri)))
            outputs.append(json.dumps((await client.call_tool("budget_status", {})).structured_content))

        [payment] = service.receipts()
        assert payment.header and payment.state.value == "paid"
        for text in outputs:
            assert KEY[2:].lower() not in text.lower() and payment.header not in text and "Traceback" not in text


async def test_over_the_threshold_it_returns_awaiting_approval_and_continues_once_approved(tmp_path: Path) -> None:
    """No human behind MCP: the payment waits in the operator's queue; approved, wait_for_video continues it."""
    with (
        SandboxServer(SandboxConfig(speed=float(SPEED))) as sandbox,
        ImagineService.create(
            Settings(
                base_url=sandbox.url,
                private_key=KEY,
                data_dir=tmp_path,
                approval_threshold="0.1",
                max_per_call="0.5",
                poll_first=0.05,
                poll_floor=0.05,
                poll_cap=0.2,
            )
        ) as service,
    ):
        service.queue_approvals("mcp")
        async with Client(create_server(service)) as client:
            args = {"prompt": "a lighthouse at dusk", "duration": 1}
            waiting = await client.call_tool("generate_video", args)
            assert not waiting.is_error and waiting.structured_content is not None
            out = waiting.structured_content
            assert (out["status"], out["code"], out["paid"]) == ("awaiting_approval", "awaiting_approval", None)
            assert f"approvals approve {out['approvalId']}" in out["message"] and service.receipts() == []

            still = await client.call_tool("wait_for_video", {"task_id": out["approvalId"]})
            assert still.structured_content is not None and still.structured_content["status"] == "awaiting_approval"

            service.ledger.decide_approval(out["approvalId"], approve=True, decided_by="cli", ttl=600)
            resumed = await client.call_tool("wait_for_video", {"task_id": out["approvalId"]})
            assert not resumed.is_error and resumed.structured_content is not None, _text(resumed)
            assert resumed.structured_content["status"] == "completed"
            assert Path(resumed.structured_content["videoPath"]).is_file()
            assert service.ledger.get_approval(out["approvalId"]).state.value == "used"

            again = await client.call_tool("generate_video", args)  # a new video of it: one approval pays once
            assert again.structured_content is not None and again.structured_content["status"] == "awaiting_approval"
            assert again.structured_content["approvalId"] != out["approvalId"]

            over = await client.call_tool("generate_video", {"prompt": "a long storm", "duration": 8})
            assert over.is_error and "(code per_call_cap)" in _text(over)
        assert [p.state.value for p in service.receipts()] == ["paid"]
        assert len(httpx.get(f"{sandbox.url}/_admin/settlements").json()) == 1


async def test_video_model_and_todays_results_over_mcp(tmp_path: Path) -> None:
    """Issue 13: ``video_model`` reaches the server; results carry the media page and the coin."""
    with (
        SandboxServer(SandboxConfig(speed=float(SPEED), x402="v2", rich_results=True)) as sandbox,
        ImagineService.create(
            Settings(
                base_url=sandbox.url,
                private_key=KEY,
                data_dir=tmp_path,
                auto_clank="always",
                poll_first=0.05,
                poll_floor=0.05,
                poll_cap=0.2,
            )
        ) as service,
    ):
        async with Client(create_server(service)) as client:
            quote = (
                await client.call_tool("quote_video", {"prompt": "a heron", "duration": 2, "video_model": "sora-2-pro"})
            ).structured_content
            assert quote["amount"] == "1500000" and "fal-kling-o3" in quote["models"]
            done = await client.call_tool(
                "generate_video", {"prompt": "a heron", "duration": 2, "video_model": "sora-2-pro"}
            )
            out = done.structured_content
            assert not done.is_error and out["status"] == "completed", _text(done)
            assert sandbox.state.job(out["taskId"]).model == "sora-2-pro"
            assert out["mediaUrl"] == f"{sandbox.url}/media/{out['taskId']}"
            assert out["coin"]["address"].startswith("0x") and out["coin"]["creator"] == service.wallet.address
            status = (await client.call_tool("video_status", {"task_id": out["taskId"]})).structured_content
            assert status["mediaUrl"] == out["mediaUrl"] and status["coin"]["address"] == out["coin"]["address"]
