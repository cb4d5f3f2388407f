"""What every benchmark shares: result rows, robust timing on a noisy machine, subprocess timing.

The machine is shared and noisy (2 cores), so nothing here trusts one absolute time: each row says
what it was compared with in the same run, and ratios come from interleaved rounds (ours, theirs,
ours, theirs …) so a burst of noise hits both sides alike.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
# ``--tiny`` (the test suite's form): every section runs end to end at the smallest sizes, so a benchmark
# that stops running fails CI; its numbers mean nothing and nothing is written unless asked.
TINY = False
_T = TypeVar("_T")


def sized(quick: bool, full: _T, fast: _T, tiny: _T) -> _T:
    """The size of a run: full, ``--quick``, or ``--tiny``."""
    return tiny if TINY else fast if quick else full


@dataclass
class Row:
    """One line of the results table.

    ``value`` is ours, ``baseline`` what it was compared with (measured in the same run), ``ratio``
    value / baseline. ``target`` reads like ``<= 0.2x`` or ``< 300 MB``; ``met`` is None when the row
    has no target (context only) or could not run (``note`` says why).
    """

    section: str
    name: str
    value: float | None
    unit: str
    baseline_name: str = ""
    baseline: float | None = None
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def skipped(section: str, name: str, why: str) -> Row:
    return Row(section, name, None, "", note=f"skipped: {why}")


def ratio_row(
    section: str,
    name: str,
    value: float,
    unit: str,
    baseline_name: str,
    baseline: float,
    limit: float | None = None,
    *,
    ratio: float | None = None,
    note: str = "",
    extra: dict[str, Any] | None = None,
) -> Row:
    """A row whose target is ``ratio <= limit`` (no target when ``limit`` is None)."""
    r = ratio if ratio is not None else (value / baseline if baseline else float("inf"))
    return Row(
        section,
        name,
        value,
        unit,
        baseline_name,
        baseline,
        r,
        f"<= {limit:g}x" if limit is not None else "",
        None if limit is None else r <= limit,
        note,
        extra or {},
    )


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def per_call(fn: Callable[[], object], number: int) -> float:
    """Seconds per call of ``fn`` over ``number`` calls (one batch)."""
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def interleaved(
    ours: Callable[[], object], theirs: Callable[[], object], *, rounds: int, number: int, number_theirs: int
) -> tuple[float, float, float]:
    """Median seconds per call of each, and the median of the per-round ratios ours/theirs."""
    ours_times: list[float] = []
    theirs_times: list[float] = []
    for _ in range(rounds):
        ours_times.append(per_call(ours, number))
        theirs_times.append(per_call(theirs, number_theirs))
    ratios = [a / b for a, b in zip(ours_times, theirs_times, strict=True)]
    return median(ours_times), median(theirs_times), median(ratios)


def child_env() -> dict[str, str]:
    """The environment for child interpreters: this checkout first on the path, no stray tracing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPROFILE", "COVERAGE"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return env


def time_commands(commands: dict[str, list[str]], *, rounds: int) -> dict[str, list[float]]:
    """Wall seconds of whole processes, each command once per round, in interleaved order."""
    env = child_env()
    for argv in () if TINY else commands.values():  # warm the page cache and the bytecode caches first
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, cwd=REPO)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, argv in commands.items():
            start = time.perf_counter()
            result = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
            elapsed = time.perf_counter() - start
            if result.returncode != 0:
                raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.decode()[-500:]}")
            times[name].append(elapsed)
    return times


def python(*code: str) -> list[str]:
    return [sys.executable, "-c", "\n".join(code)]


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
