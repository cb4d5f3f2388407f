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
# Our modules that build pydantic models or pull the packages above.
OURS = (
    "imagine_agent.models",
    "imagine_agent.config",
    "imagine_agent.service",
    "imagine_agent.client",
    "imagine_agent.wallet",
    "imagine_agent.x402",
    "imagine_agent.agent",
    "imagine_agent.sandbox",
)

# Prints which of `watched` (top-level packages or our modules) this interpreter has loaded after `code`.
PROBE = """
import json, sys
{code}
watched = set({watched!r})
names = [name for name, module in sys.modules.items() if module is not None]
loaded = {{name.split(".")[0] for name in names}} | {{name for name in names if name.startswith("imagine_agent.")}}
print(json.dumps(sorted(loaded & watched)))
"""


def _loaded_after(code: str, watched: tuple[str, ...] = HEAVY + OURS) -> list[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code, watched=watched)],
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
    assert _loaded_after("import imagine_agent.cli") == []


def test_importing_the_package_loads_nothing_heavy() -> None:
    assert _loaded_after("import imagine_agent") == []


@pytest.mark.parametrize("argv", [["--help"], ["quote", "--help"], ["status", "--help"], ["generate", "--help"]])
def test_help_loads_nothing_heavy(argv: list[str]) -> None:
    """Typer itself imports pydantic to convert a command's parameters; our models stay unloaded."""
    code = (
        "import contextlib, io\n"
        "from imagine_agent.cli import app\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    app({argv!r}, prog_name='imagine-agent')\n"
    )
    watched = tuple(name for name in HEAVY if name != "pydantic") + OURS
    assert _loaded_after(code, watched) == []
