"""MCP start-up: spawn -> ``initialize`` answered -> ``tools/list`` answered, over stdio.

Desktop clients (Claude Desktop, Cursor, ElizaOS's plugin-mcp) spawn ``imagine-agent mcp`` for every
session, so this is what their users wait for. The baseline is a minimal server of the same SDK with
one tool, spawned the same way in the same run (interleaved rounds). The client here speaks raw
JSON-RPC lines over the pipes, so both sides pay the same, and nothing of the client's SDK is timed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from mcp.types import LATEST_PROTOCOL_VERSION

from . import common
from .common import REPO, Row, child_env, median, python

MINIMAL_SERVER = (
    "from mcp.server.mcpserver import MCPServer",
    "server = MCPServer('minimal')",
    "@server.tool()",
    "def echo(text: str) -> str:",
    "    'Say it back.'",
    "    return text",
    "server.run('stdio')",
)


def _send(stdin: IO[str], message: dict[str, Any]) -> None:
    stdin.write(json.dumps(message) + "\n")
    stdin.flush()


def _answer(stdout: IO[str], request_id: int) -> dict[str, Any]:
    while True:
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"the server exited before answering request {request_id}")
        message: dict[str, Any] = json.loads(line)
        if message.get("id") == request_id:
            if "error" in message:
                raise RuntimeError(f"request {request_id} failed: {message['error']}")
            return message


def session(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Seconds from spawn to the ``initialize`` answer and to the ``tools/list`` answer; the tool count."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        _send(
            proc.stdin,
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": LATEST_PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "benchmark", "version": "0"},
                },
            },
        )
        _answer(proc.stdout, 1)
        initialized = time.perf_counter() - start
        _send(proc.stdin, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        _send(proc.stdin, {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
        tools = _answer(proc.stdout, 2)["result"]["tools"]
        listed = time.perf_counter() - start
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return initialized, listed, len(tools)


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("imagine-agent")
    return [str(script)] if script.exists() else [sys.executable, "-m", "imagine_agent"]


def run(section: str, rounds: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="imagine-bench-mcp-") as tmp:
        env = {k: v for k, v in child_env().items() if not k.startswith("IMAGINE_")}
        Path(tmp, "none.toml").touch()  # an empty config: a missing IMAGINE_CONFIG file is an error
        env.update({"IMAGINE_DATA_DIR": tmp, "IMAGINE_CONFIG": os.path.join(tmp, "none.toml")})
        commands = {"ours": [*_cli(), "mcp"], "minimal": python(*MINIMAL_SERVER)}
        for argv in () if common.TINY else commands.values():  # warm the page cache and the bytecode caches
            session(argv, env)
        times: dict[str, list[tuple[float, float, int]]] = {name: [] for name in commands}
        for _ in range(rounds):
            for name, argv in commands.items():
                times[name].append(session(argv, env))
    rows = []
    for index, label in ((0, "initialize answered"), (1, "tools/list answered")):
        ours = [t[index] for t in times["ours"]]
        base = [t[index] for t in times["minimal"]]
        ratio = median([a / b for a, b in zip(ours, base, strict=True)])
        rows.append(
            Row(
                section,
                f"imagine-agent mcp: spawn -> {label}",
                median(ours) * 1e3,
                "ms",
                "minimal MCP server, same SDK, 1 tool",
                median(base) * 1e3,
                ratio,
                "<= 1.3x",
                ratio <= 1.3,
                f"stdio, no base URL (the sandbox starts on the first tool call); {times['ours'][0][2]} tools vs 1; "
                f"median of {rounds} interleaved rounds",
            )
        )
    return rows
