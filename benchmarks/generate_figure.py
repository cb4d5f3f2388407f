"""`imagine-agent generate` against `imagine-agent sandbox --speed 30`: how soon after the render it ends.

The user's figure of issue 23: renders of 2-6 s (60-180 s at speed 30) with the CLI's unscaled 15 s
tick, so fixed polling ends ~15 s after each start. With history, the first job is polled on the tick
and every later one aims where the earlier ones ended (the ledger persists between the processes).
Measured: process exit minus the render's end (the sandbox's createdAt + runSeconds), per job, for
the default schedule and for fixed 15 s polling (IMAGINE_POLL_FLOOR=15) on the same seeded render times.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from . import common
from .common import REPO, Row, child_env, log, ratio_row
from .sandbox_child import sandbox_process

KEY = "0x" + "4c" * 32
SPEED = 30.0


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("imagine-agent")
    return [str(script)] if script.exists() else [sys.executable, "-m", "imagine_agent"]


def lags(url: str, jobs: int, extra_env: dict[str, str]) -> list[float]:
    """Seconds from each render's end to the `generate` process's exit, jobs run one after another.

    The sandbox is reset first, so every schedule measured gets the same seeded render times; each gets its
    own data dir (its own history)."""
    out: list[float] = []
    httpx.post(f"{url}/_admin/reset", timeout=10).raise_for_status()
    with tempfile.TemporaryDirectory(prefix="imagine-bench-gen-") as tmp:
        config = Path(tmp, "imagine.toml")
        config.touch()
        env = {k: v for k, v in child_env().items() if not k.startswith("IMAGINE_")}
        env.update(
            {
                "IMAGINE_DATA_DIR": tmp,
                "IMAGINE_CONFIG": str(config),
                "IMAGINE_PRIVATE_KEY": KEY,
                "NO_COLOR": "1",
                **extra_env,
            }
        )
        for i in range(jobs):
            argv = [
                *_cli(),
                "generate",
                f"a lighthouse at dusk, take {i}",
                "--base-url",
                url,
                "--json",
                "-o",
                os.path.join(tmp, "out"),
            ]
            result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
            ended = time.time()
            if result.returncode != 0:
                raise RuntimeError(f"generate failed: {result.stdout[-500:]} {result.stderr[-500:]}")
            task_id = json.loads(result.stdout)["taskId"]
            info = httpx.get(f"{url}/_bench/jobs/{task_id}", timeout=10).json()
            out.append(ended - (info["createdAt"] + info["runSeconds"]))
    return out


def run(jobs: int) -> list[Row]:
    if common.TINY:  # the same processes and code paths on a clock ten times faster: the numbers mean nothing
        tick = {"IMAGINE_POLL_FIRST": "1.5", "IMAGINE_POLL_CAP": "1.5", "IMAGINE_POLL_FLOOR": "0.1"}
        with sandbox_process(10 * SPEED) as url:
            ours = lags(url, jobs, tick)
            fixed = lags(url, 1, {**tick, "IMAGINE_POLL_FLOOR": "1.5"})
    else:
        with sandbox_process(SPEED) as url:
            ours = lags(url, jobs, {})
            fixed = lags(url, jobs, {"IMAGINE_POLL_FLOOR": "15"})
    later, later_fixed = ours[1:] or ours, fixed[1:] or fixed
    log(f"  generate at speed 30: ours {[round(x, 1) for x in ours]}, fixed {[round(x, 1) for x in fixed]}")
    return [
        ratio_row(
            "2. polling",
            "generate vs sandbox --speed 30: render end -> exit, after the first job",
            statistics.fmean(later),
            "s",
            "fixed 15 s polling",
            statistics.fmean(later_fixed),
            None,
            note=f"{jobs} jobs one after another, CLI processes sharing a data dir; first job {ours[0]:.1f} s "
            f"(no history yet); later max {max(later):.1f} s vs fixed max {max(later_fixed):.1f} s; "
            "includes process exit and the download",
        )
    ]
