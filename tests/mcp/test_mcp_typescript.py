"""The MCP server under the official TypeScript SDK client (npm ``@modelcontextprotocol/sdk``), which times a
call out after 60 s whatever progress it is sent (as ElizaOS's plugin-mcp does).

The node project is ``tests/mcp/node`` (its own lockfile), installed by ``.ci/setup-surfaces-node.sh``.
The sandbox's jobs take longer than the server's per-call wait, so the calls return ``still_running`` and
``wait_for_video`` finishes the job: the behaviour a 60 s client needs, shown without waiting minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.embedded import PYTHON, ROOT, subprocess_env

NODE_PROJECT = ROOT / "tests" / "mcp" / "node"
SETUP = ".ci/setup-surfaces-node.sh"


def _node() -> str:
    node = shutil.which("node")
    installed = (NODE_PROJECT / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir()
    if node is None or not installed:
        message = f"the TypeScript MCP SDK is not installed: run {SETUP}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return node


def test_typescript_sdk_client_within_its_60_s_timeout(tmp_path: Path) -> None:
    node = _node()
    env = subprocess_env(
        tmp_path, IMAGINE_SANDBOX_SPEED="30", IMAGINE_MCP_WAIT_SECONDS="1", IMAGINE_APPROVAL_THRESHOLD="0.5"
    )
    done = subprocess.run(
        [node, "client.mjs", PYTHON],
        cwd=NODE_PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])

    assert report["server"]["name"] == "imagine-agent" and report["server"]["version"]
    tools = {t["name"]: t for t in report["tools"]}
    duration = tools["generate_video"]["inputSchema"]["properties"]["duration"]
    assert duration["type"] == "number" and (duration["minimum"], duration["maximum"]) == (1, 60)
    assert tools["quote_video"]["annotations"]["readOnlyHint"] is True
    assert report["badDuration"]["isError"] and "duration" in report["badDuration"]["text"]

    # The payment over the threshold was asked over elicitation (this SDK speaks 2025-11-25: elicitation/create).
    assert len(report["elicited"]) == 1 and "1.000000 USDC" in report["elicited"][0]
    first = report["first"]
    assert first["status"] == "still_running" and first["paid"]["amount"] == "1000000", first
    assert report["waits"] >= 1 and report["progress"] >= 1
    final = report["final"]
    assert final["status"] == "completed" and Path(final["videoPath"]).is_file(), final
    assert "HTTP Request" not in done.stderr and "Processing request" not in done.stderr
