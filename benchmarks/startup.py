"""5. Start-up of whole processes: ``imagine-agent --help`` and two subcommands' help vs importing typer.

Then what users wait for (``benchmarks.mcp_startup``, ``benchmarks.user_figures``): ``imagine-agent mcp``
to ``initialize`` and ``tools/list`` answered against a minimal server of the same SDK, ``quote`` to the
printed price and ``chat`` to its first line against a bare httpx request, all in the same run.

The floor is ``python -c "import typer"`` (the CLI cannot start faster than its framework imports);
bare ``python -c pass`` stands beside it. Context rows show where the rest goes: a two-command typer
app with no imagine_agent printing the same kinds of help (typer's own rendering), and our help with
typer's rich rendering off.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from . import mcp_startup, user_figures
from .common import REPO, Row, child_env, log, median, python, ratio_row, sized, time_commands

SECTION = "5. start-up"
HEAVY = ("eth_account", "langchain", "langchain_core", "langgraph", "fastapi", "httpx", "uvicorn", "coincurve")
OURS_HEAVY = ("imagine_agent.models", "imagine_agent.config", "imagine_agent.service", "imagine_agent.client")


def minimal_typer_app(*argv: str) -> list[str]:
    """A two-command typer app with no imagine_agent in it, printing its help: typer's own cost."""
    return python(
        "import typer",
        "app = typer.Typer(add_completion=False)",
        "@app.command()",
        "def quote(prompt: str, duration: float = 8.0, as_json: bool = False) -> None:",
        "    'Ask the price of a video.'",
        "@app.command()",
        "def status(task_id: str, as_json: bool = False) -> None:",
        "    'Show a task status.'",
        f"app({list(argv)!r}, prog_name='minimal')",
    )


def _cli() -> list[str]:
    """The installed console script when there is one (what users run), else ``python -m imagine_agent``."""
    script = Path(sys.executable).with_name("imagine-agent")
    if script.exists():
        return [str(script)]
    found = shutil.which("imagine-agent")
    if found and "shims" not in found:
        return [found]
    return [sys.executable, "-m", "imagine_agent"]


def heavy_modules(argv: list[str]) -> list[str]:
    """Heavy packages (and our pydantic-model modules) loaded on the way to ``imagine-agent ARGV``."""
    code = python(
        "import contextlib, io, json, sys",
        "from imagine_agent.cli import app",
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):",
        f"    app({argv!r}, prog_name='imagine-agent')",
        f"watched = set({HEAVY + OURS_HEAVY!r})",
        "loaded = [n for n, module in sys.modules.items() if module is not None]",
        "names = {n.split('.')[0] for n in loaded} | set(loaded)",
        "print(json.dumps(sorted(names & watched)))",
    )
    out = subprocess.run(code, env=child_env(), capture_output=True, text=True, check=True, cwd=REPO).stdout
    loaded: list[str] = json.loads(out.strip().splitlines()[-1])
    return loaded


def run(quick: bool) -> list[Row]:
    cli = _cli()
    commands = {
        "bare": python("pass"),
        "typer": python("import typer"),
        "--help": [*cli, "--help"],
        "quote --help": [*cli, "quote", "--help"],
        "status --help": [*cli, "status", "--help"],
        "typer app --help": minimal_typer_app("--help"),
        "typer app quote --help": minimal_typer_app("quote", "--help"),
        "quote --help, TYPER_USE_RICH=0": python(
            "import os, sys",
            "os.environ['TYPER_USE_RICH'] = '0'",
            "sys.argv = ['imagine-agent', 'quote', '--help']",
            "from imagine_agent.cli import main",
            "main()",
        ),
    }
    times = time_commands(commands, rounds=sized(quick, 7, 5, 1))
    floor = median(times["typer"])
    bare = median(times["bare"])
    log(f"  start-up: bare python {bare * 1e3:.0f} ms, import typer {floor * 1e3:.0f} ms ({' '.join(cli)})")
    rows: list[Row] = [Row(SECTION, "python -c pass", bare * 1e3, "ms", note="beside the floor")]
    for name in ("--help", "quote --help", "status --help"):
        heavy = heavy_modules(name.split())
        ratios = [a / b for a, b in zip(times[name], times["typer"], strict=True)]
        same = "typer app --help" if name == "--help" else "typer app quote --help"
        vs_app = median([a / b for a, b in zip(times[name], times[same], strict=True)])
        value = median(times[name])
        log(f"  imagine-agent {name}: {value * 1e3:.0f} ms ({median(ratios):.2f}x the floor); heavy: {heavy or 'none'}")
        row = ratio_row(
            SECTION,
            f"imagine-agent {name}",
            value * 1e3,
            "ms",
            'python -c "import typer"',
            floor * 1e3,
            1.5,
            ratio=median(ratios),
            note=f"{vs_app:.2f}x a bare typer app's {'--help' if name == '--help' else 'subcommand --help'}; "
            f"heavy modules: {', '.join(heavy) or 'none'}",
            extra={"vs_minimal_typer_app_help": vs_app},
        )
        if heavy:
            row.met = False
        rows.append(row)
    for name, note in (
        ("typer app --help", "context: a two-command typer app without imagine_agent (typer's own cost)"),
        ("typer app quote --help", "context: the same app's subcommand help (typer loads pydantic for it)"),
        ("quote --help, TYPER_USE_RICH=0", "context: our quote --help with typer's rich rendering off"),
    ):
        ratios = [a / b for a, b in zip(times[name], times["typer"], strict=True)]
        rows.append(
            ratio_row(
                SECTION,
                name,
                median(times[name]) * 1e3,
                "ms",
                'python -c "import typer"',
                floor * 1e3,
                ratio=median(ratios),
                note=note,
            )
        )
    for more in (mcp_startup.run(SECTION, sized(quick, 9, 5, 1)), user_figures.run(SECTION, sized(quick, 5, 3, 1))):
        for row in more:
            log(f"  {row.name}: {row.value:.0f} ms vs {row.baseline:.0f} ms ({row.ratio:.2f}x)")
        rows += more
    return rows
