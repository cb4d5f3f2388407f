"""The CLI's ``--help`` stays fast because nothing heavy is imported on the way to it.

Checked by behaviour (which modules a fresh interpreter has loaded), never by timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("eth_account", "langchain", "langchain_core", "langgraph", "fastapi", "pydantic", "httpx", "uvicorn")

# Prints the heavy top-level packages this interpreter has loaded, after running `code`.
PROBE = """
import json, sys
{code}
heavy = {heavy!r}
print(json.dumps(sorted({{name.split(".")[0] for name in sys.modules}} & set(heavy))))
"""


def _heavy_modules_after(code: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code, heavy=HEAVY)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_importing_the_cli_loads_nothing_heavy() -> None:
    assert _heavy_modules_after("import imagine_agent.cli") == []


def test_importing_the_package_loads_nothing_heavy() -> None:
    assert _heavy_modules_after("import imagine_agent") == []


@pytest.mark.parametrize("argv", [["--help"], ["quote", "--help"], ["status", "--help"], ["generate", "--help"]])
def test_help_loads_nothing_heavy(argv: list[str]) -> None:
    code = (
        "import contextlib, io\n"
        "from imagine_agent.cli import app\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    app({argv!r}, prog_name='imagine-agent')\n"
    )
    assert _heavy_modules_after(code) == []
