"""docs/surfaces.md ("Use it from your agent"): every python and bash block runs; every MCP config JSON starts a server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp.client import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from imagine_agent.plugin import CONFIG_KEYS
from tests.embedded import ROOT, subprocess_env
from tests.optional import require_elizaos
from tests.readme import SURFACES, blocks, page

BLOCKS = blocks(page(SURFACES))
RUNNABLE = [(lang, code) for lang, code in BLOCKS if lang in ("python", "bash")]
CONFIGS = [json.loads(code) for lang, code in BLOCKS if lang == "json"]
# What each runnable block must print (in order of appearance): a paid video from the sandbox.
EXPECTED = [r"(?i)paid\W+0\.250*\s*USDC", r"Your video is ready", r"\.mp4 \{'amount': '250000'", r""]


def _env(tmp_path: Path) -> dict[str, str]:
    env = subprocess_env(tmp_path / "data")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def test_every_block_is_covered() -> None:
    assert [lang for lang, _ in BLOCKS] == ["python", "python", "json", "json", "python", "bash"]
    assert len(EXPECTED) == len(RUNNABLE)


@pytest.mark.parametrize(
    ("index", "lang", "code"),
    [(i, lang, code) for i, (lang, code) in enumerate(RUNNABLE)],
    ids=[f"{lang}{i}" for i, (lang, _) in enumerate(RUNNABLE)],
)
def test_snippet_runs(index: int, lang: str, code: str, tmp_path: Path) -> None:
    if "elizaos" in code:
        require_elizaos()  # skipped without it; under CI=true, a failure
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    command = [sys.executable, "-c", code] if lang == "python" else ["bash", "-euo", "pipefail", "-c", code]
    run = subprocess.run(command, cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert re.search(EXPECTED[index], run.stdout), run.stdout
    if lang == "bash":
        [post] = [json.loads(line) for line in (tmp_path / "outbox.jsonl").read_text().splitlines()]
        assert post["requestId"] == "r1" and Path(post["videoPath"]).is_file()


def _servers(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    servers: dict[str, dict[str, Any]] = config.get("mcpServers") or config["settings"]["mcp"]["servers"]
    return servers


@pytest.mark.parametrize("config", CONFIGS, ids=["claude-cursor", "elizaos-plugin-mcp"])
async def test_mcp_config_starts_a_server_with_its_caps(config: dict[str, Any], tmp_path: Path) -> None:
    [entry] = _servers(config).values()
    assert entry.get("type", "stdio") == "stdio" and set(entry["env"]) <= set(CONFIG_KEYS)
    params = StdioServerParameters(
        command=entry["command"], args=entry["args"], env={**_env(tmp_path), **entry["env"]}, cwd=str(tmp_path)
    )
    async with (
        stdio_client(params, errlog=(tmp_path / "err.txt").open("w")) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.call_tool("budget_status", {})
    assert result.structured_content is not None, (tmp_path / "err.txt").read_text()
    caps = result.structured_content["caps"]
    assert caps["daily"] == str(int(entry["env"]["IMAGINE_DAILY_CAP"]) * 1_000_000)
    if "IMAGINE_MAX_PER_CALL" in entry["env"]:
        assert caps["perCall"] == str(int(entry["env"]["IMAGINE_MAX_PER_CALL"]) * 1_000_000)
