"""What users wait for at a terminal: ``imagine-agent quote`` to the printed price, and ``chat``'s first line.

Both against the sandbox in another process on loopback (``--base-url``), with a throwaway key. The
baseline is the least anyone could do: a bare ``python -c "import httpx; httpx.post(...)"`` sending
the same create request to the same server (it gets the same 402 with the price), timed in the same
interleaved rounds as ours. ``chat``'s first line (what is about to happen, where the money goes) is also
held to at most 2x a bare ``python -c "import httpx"`` printing a line, in the same rounds.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from . import common
from .common import REPO, Row, child_env, median, python
from .mcp_startup import _cli
from .sandbox_child import sandbox_process

KEY = "0x" + "2b" * 32
PROMPT = "a lighthouse at dusk"


def _until_line(argv: list[str], env: dict[str, str], needle: str) -> float:
    """Seconds from spawn to the first output line (stdout or stderr) containing ``needle``."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        seen = []
        while line := proc.stdout.readline():
            seen.append(line)
            if needle in line:
                return time.perf_counter() - start
        raise RuntimeError(f"{' '.join(argv[-3:])}: no line with {needle!r} in {''.join(seen)[-500:]!r}")
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(section: str, rounds: int) -> list[Row]:
    with sandbox_process(30.0) as url, tempfile.TemporaryDirectory(prefix="imagine-bench-cli-") as tmp:
        env = {k: v for k, v in child_env().items() if not k.startswith("IMAGINE_")}
        Path(tmp, "none.toml").touch()  # an empty config: a missing IMAGINE_CONFIG file is an error
        env.update(
            {
                "IMAGINE_DATA_DIR": tmp,
                "IMAGINE_CONFIG": os.path.join(tmp, "none.toml"),
                "IMAGINE_PRIVATE_KEY": KEY,
                "NO_COLOR": "1",
            }
        )
        open(os.path.join(tmp, "none.toml"), "w").close()  # an empty config: a missing IMAGINE_CONFIG is an error
        cli = _cli()
        commands = {
            "quote": ([*cli, "quote", PROMPT, "--base-url", url], "price:"),
            "httpx": (
                python(
                    "import httpx",
                    f"r = httpx.post({url + '/generation/create'!r}, json={{'prompt': {PROMPT!r}, 'duration': 8}})",
                    "print('status:', r.status_code, r.headers.get('payment-required', r.text)[:40])",
                ),
                "status: 402",
            ),
            "chat": ([*cli, "chat", "--base-url", url], "Chat with the video agent"),
            "import httpx": (python("import httpx", "print('imported')"), "imported"),
        }
        for argv, needle in () if common.TINY else commands.values():  # warm the page and bytecode caches
            _until_line(argv, env, needle)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(rounds):
            for name, (argv, needle) in commands.items():
                times[name].append(_until_line(argv, env, needle))
    base = median(times["httpx"])
    rows = []
    for name, label, note in (
        ("quote", "imagine-agent quote: start -> price printed", "loopback sandbox; settings, ledger, 402 parsed"),
        ("chat", "imagine-agent chat: start -> first line", "interactive; printed before the agent is built"),
    ):
        ratio = median([a / b for a, b in zip(times[name], times["httpx"], strict=True)])
        rows.append(
            Row(
                section,
                name=label,
                value=median(times[name]) * 1e3,
                unit="ms",
                baseline_name='bare python -c "import httpx; httpx.post(...)"',
                baseline=base * 1e3,
                ratio=ratio,
                note=f"context; {note}; median of {rounds} interleaved rounds",
            )
        )
    imported = median(times["import httpx"])
    first = median([a / b for a, b in zip(times["chat"], times["import httpx"], strict=True)])
    rows.append(
        Row(
            section,
            name="imagine-agent chat: start -> first line (vs import httpx)",
            value=median(times["chat"]) * 1e3,
            unit="ms",
            baseline_name='bare python -c "import httpx"',
            baseline=imported * 1e3,
            ratio=first,
            target="<= 2x",
            met=first <= 2.0,
            note=f"issue 23 item 6: the first feedback; median of {rounds} interleaved rounds",
        )
    )
    return rows
