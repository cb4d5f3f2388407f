"""``python -m benchmarks [--quick] [--only payment,polling,...]``: run the benchmarks, print the table.

Writes every row to ``benchmarks/results/latest.json``. A full run of every section also rewrites the
table in ``docs/performance.md`` (between its markers; the analysis around them is kept), or give
``--markdown PATH``. Sections run in an order that keeps the timing-sensitive ones away from the
heavy ones; the agent section runs last.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
import traceback
from importlib import import_module
from pathlib import Path

from . import common
from .common import REPO, Row, log

# Each name is a module of this package with ``SECTION`` (its title) and ``run(quick) -> rows``, imported only
# when it runs: ``--only polling`` does not load the x402 SDK, eth-account or LangChain of the others.
SECTIONS: tuple[str, ...] = ("payment", "startup", "polling", "scale", "ledger", "agent")
RESULTS_JSON = REPO / "benchmarks" / "results" / "latest.json"
RESULTS_MD = REPO / "docs" / "performance.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100 or unit in ("/s", "tok"):
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def cells(row: Row) -> list[str]:
    met = {True: "yes", False: "NO", None: ""}[row.met]
    ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
    baseline = f"{fmt(row.baseline, row.unit)} ({row.baseline_name})" if row.baseline_name else ""
    return [row.section, row.name, fmt(row.value, row.unit), baseline, ratio, row.target, met, row.note]


HEADER = ["section", "benchmark", "ours", "baseline (same run)", "ratio", "target", "met", "note"]


def text_table(rows: list[Row]) -> str:
    table = [HEADER, *(cells(r) for r in rows)]
    widths = [min(max(len(line[i]) for line in table), 60) for i in range(len(HEADER) - 1)]
    out = []
    for line in table:
        out.append("  ".join(c.ljust(w)[:w] for c, w in zip(line, widths, strict=False)) + "  " + line[-1])
    return "\n".join(out)


def markdown_table(rows: list[Row]) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(esc(c) for c in cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def write_markdown(path: Path, rows: list[Row], command: str, when: dt.datetime, seconds: float) -> None:
    missed = [r for r in rows if r.met is False]
    block = "\n".join(
        [
            START,
            f"Command: `{command}`  ",
            f"Date: {when:%Y-%m-%d %H:%M} UTC, {seconds / 60:.1f} minutes  ",
            f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}",
            "",
            markdown_table(rows),
            "",
            "Targets missed: " + (", ".join(f"{r.section} {r.name}" for r in missed) if missed else "none"),
            END,
        ]
    )
    if path.exists() and START in (text := path.read_text()) and END in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1]
        path.write_text(head + block + tail)
    else:
        path.write_text(f"# Benchmark results\n\n{block}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and jobs, no 5,000-job run (~2 min)")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="every section at its smallest, for the test suite: checks it runs, writes nothing",
    )
    parser.add_argument("--only", default="", help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--json", type=Path, default=None, help="where to write the rows as JSON")
    parser.add_argument("--markdown", type=Path, default=None, help="write the table into this Markdown file")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; known: {', '.join(SECTIONS)}")
    common.TINY = args.tiny
    quick = args.quick or args.tiny
    markdown = args.markdown or (RESULTS_MD if not quick and chosen == list(SECTIONS) else None)
    out_json = args.json or (None if args.tiny else RESULTS_JSON)
    command = " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])]).strip()
    when = dt.datetime.now(dt.UTC)
    began = time.perf_counter()
    rows: list[Row] = []
    for name in chosen:
        section = name
        log(f"{name} ...")
        t0 = time.perf_counter()
        try:
            module = import_module(f"{__package__}.{name}")
            section = module.SECTION
            rows += module.run(quick)
        except Exception as exc:  # one broken section must not hide the others
            traceback.print_exc()
            rows.append(Row(section, name, None, "", met=False, note=f"failed: {type(exc).__name__}: {exc}"[:300]))
        log(f"{section} done in {time.perf_counter() - t0:.0f} s")
    seconds = time.perf_counter() - began
    rows.sort(key=lambda r: r.section)
    print(text_table(rows))
    missed = [r for r in rows if r.met is False]
    print(f"\n{len(rows)} rows in {seconds:.0f} s; targets missed: {len(missed)}")
    for r in missed:
        print(f"  MISSED {r.section} {r.name}: {fmt(r.value, r.unit)}, target {r.target or 'see note'} ({r.note})")
    if out_json is None:
        return 1 if any(r.note.startswith("failed: ") for r in rows) else 0
    out_json.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "date": when.isoformat(timespec="seconds"),
        "command": command,
        "quick": quick,
        "seconds": seconds,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "rows": [r.to_json() for r in rows],
        "missed": [f"{r.section} {r.name}" for r in missed],
    }
    out_json.write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {out_json}")
    if markdown is not None:
        write_markdown(markdown, rows, command, when, seconds)
        log(f"wrote {markdown}")
    return 1 if any(r.note.startswith("failed: ") for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
