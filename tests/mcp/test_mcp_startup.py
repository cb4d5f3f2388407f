"""``imagine-agent mcp`` answers ``initialize`` and ``tools/list`` without loading the service.

Desktop clients spawn it for every session; what it imports before the first tool call is what their
users wait for. Checked by behaviour (which modules the server process has loaded when it exits),
never by timing. The client speaks JSON-RPC lines over the real stdio pipes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

from mcp.types import LATEST_PROTOCOL_VERSION

REPO = Path(__file__).resolve().parents[2]
# Loaded only when a tool needs them: the service and what it pulls (httpx, the wallet's signing
# stack, the ledger, the sandbox), the agent stack, media decoding; FastAPI (the console's) never.
HEAVY = (
    "eth_account",
    "coincurve",
    "Crypto",
    "langchain",
    "langchain_core",
    "langgraph",
    "fastapi",
    "httpx",
    "av",
    "PIL",
    "sqlite3",
    "psycopg",
)
OURS = (
    "imagine_agent.service.service",
    "imagine_agent.client",
    "imagine_agent.wallet",
    "imagine_agent.x402",
    "imagine_agent.ledger",
    "imagine_agent.models",
    "imagine_agent.flows",
    "imagine_agent.sandbox",
    "imagine_agent.agent",
    "imagine_agent.plugin",
)

# `imagine-agent mcp` as the console script runs it; at exit it writes which watched modules it loaded.
PROBE = """
import atexit, json, sys
watched = set({watched!r})
def dump():
    names = [n for n, module in sys.modules.items() if module is not None]  # main marks httpx's CLI absent: None
    loaded = {{n.split(".")[0] for n in names}} | {{n for n in names if n.startswith("imagine_agent.")}}
    with open({out!r}, "w") as f:
        json.dump(sorted(loaded & watched), f)
atexit.register(dump)
sys.argv = ["imagine-agent", "mcp"]
from imagine_agent.cli import main
main()
"""


def _send(stdin: IO[str], message: dict[str, Any]) -> None:
    stdin.write(json.dumps(message) + "\n")
    stdin.flush()


def _answer(stdout: IO[str], request_id: int) -> dict[str, Any]:
    while line := stdout.readline():
        message: dict[str, Any] = json.loads(line)
        if message.get("id") == request_id:
            return message
    raise AssertionError(f"the server exited before answering request {request_id}")


def _session(tmp_path: Path, calls: list[str], extra_env: dict[str, str] | None = None) -> tuple[list[str], list[Any]]:
    """Initialize, list tools, call ``calls`` (no arguments), close stdin; the loaded modules and answers."""
    out = tmp_path / "loaded.json"
    env = dict(os.environ)  # the autouse isolated_environment dropped IMAGINE_*
    env.update(
        {
            "IMAGINE_DATA_DIR": str(tmp_path),
            "IMAGINE_CONFIG": str(_empty_config(tmp_path)),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            **(extra_env or {}),
        }
    )
    code = PROBE.format(watched=HEAVY + OURS, out=str(out))
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.stdin is not None and proc.stdout is not None
    answers: list[Any] = []
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
                    "clientInfo": {"name": "test", "version": "0"},
                },
            },
        )
        answers.append(_answer(proc.stdout, 1)["result"])
        _send(proc.stdin, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        _send(proc.stdin, {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
        answers.append(_answer(proc.stdout, 2)["result"])
        for i, name in enumerate(calls, start=3):
            _send(
                proc.stdin,
                {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": name, "arguments": {}}},
            )
            answers.append(_answer(proc.stdout, i)["result"])
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    loaded: list[str] = json.loads(out.read_text())
    return loaded, answers


def test_initialize_and_tools_list_load_nothing_heavy(tmp_path: Path) -> None:
    loaded, answers = _session(tmp_path, [])
    assert answers[0]["serverInfo"]["name"] == "imagine-agent"
    assert {t["name"] for t in answers[1]["tools"]} >= {"quote_video", "generate_video", "budget_status"}
    assert loaded == []


def test_the_first_tool_call_creates_the_service(tmp_path: Path) -> None:
    """Not lazy by accident: the service (and the embedded sandbox, with no base URL) loads on demand."""
    loaded, answers = _session(tmp_path, ["budget_status"])
    assert not answers[2].get("isError"), answers[2]
    assert answers[2]["structuredContent"]["sandbox"] is True
    assert {"imagine_agent.service.service", "imagine_agent.sandbox", "httpx"} <= set(loaded)


def test_a_missing_wallet_is_refused_at_start_without_a_traceback(tmp_path: Path) -> None:
    env = dict(os.environ)  # the autouse isolated_environment dropped IMAGINE_*
    env.update(
        {
            "IMAGINE_DATA_DIR": str(tmp_path),
            "IMAGINE_CONFIG": str(_empty_config(tmp_path)),
            "IMAGINE_BASE_URL": "http://127.0.0.1:9",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "imagine_agent", "mcp"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2
    assert "no paying wallet" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def _empty_config(directory: Path) -> Path:
    """An existing, empty imagine.toml: not the developer's (a missing IMAGINE_CONFIG file is an error)."""
    path = directory / "empty-imagine.toml"
    path.touch()
    return path
