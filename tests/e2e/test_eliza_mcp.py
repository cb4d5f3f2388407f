"""The ElizaOS TypeScript recipe (examples/eliza-mcp): @elizaos/core 1.7.2 + @elizaos/plugin-mcp 1.8.2 (CJS
build) + @elizaos/plugin-bootstrap 1.7.2 load together, and plugin-mcp's own MCP service calls
``imagine-agent mcp`` within its 60 s tool timeout: generate_video returns still_running for a render longer
than the server's wait, wait_for_video finishes it, one payment.

Installed by ``.ci/setup-eliza-ts.sh`` (npm ci from the example's lockfile).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.embedded import PYTHON, ROOT, subprocess_env

RECIPE = ROOT / "examples" / "eliza-mcp"
SETUP = ".ci/setup-eliza-ts.sh"


def _node() -> str:
    node = shutil.which("node")
    installed = all(
        (RECIPE / "node_modules" / "@elizaos" / p).is_dir() for p in ("core", "plugin-mcp", "plugin-bootstrap")
    )
    if node is None or not installed:
        message = f"the ElizaOS TypeScript recipe is not installed: run {SETUP}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return node


def test_the_character_sets_the_timeout_and_the_server() -> None:
    character = json.loads((RECIPE / "character.json").read_text())
    assert character["plugins"] == ["@elizaos/plugin-bootstrap", "@elizaos/plugin-mcp"]
    server = character["settings"]["mcp"]["servers"]["imagine"]
    assert (server["type"], server["command"], server["args"]) == ("stdio", "imagine-agent", ["mcp"])
    # plugin-mcp times a tool call out after timeoutInMillis (60 s), progress or not: the server must answer first.
    assert float(server["env"]["IMAGINE_MCP_WAIT_SECONDS"]) * 1000 < server["timeoutInMillis"] - 10_000
    lock = json.loads((RECIPE / "package-lock.json").read_text())["packages"]
    assert {
        name: lock[f"node_modules/{name}"]["version"]
        for name in ("@elizaos/core", "@elizaos/plugin-mcp", "@elizaos/plugin-bootstrap")
    } == {"@elizaos/core": "1.7.2", "@elizaos/plugin-mcp": "1.8.2", "@elizaos/plugin-bootstrap": "1.7.2"}


def test_plugin_mcp_drives_imagine_agent_mcp(tmp_path: Path) -> None:
    node = _node()
    env = subprocess_env(
        tmp_path,
        IMAGINE_SANDBOX_SPEED="30",
        IMAGINE_MCP_WAIT_SECONDS="1",
        IMAGINE_MCP_COMMAND=json.dumps([PYTHON, "-m", "imagine_agent", "mcp"]),
    )
    done = subprocess.run(
        [node, "check.cjs"], cwd=RECIPE, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["bootstrap"] == "bootstrap" and report["server"] == {"name": "imagine", "status": "connected"}
    assert report["tools"] == ["budget_status", "generate_video", "quote_video", "video_status", "wait_for_video"]
    assert report["quote"]["amount"] == "250000"
    assert report["first"]["status"] == "still_running" and report["first"]["paid"]["amount"] == "250000"
    assert report["waits"] >= 1 and report["final"]["status"] == "completed"
    assert Path(report["final"]["videoPath"]).is_relative_to(tmp_path)
