"""``python -m benchmarks.reliability [--profile short|long]``: prove the agent survives every known
agent-payment failure, live, and publish the figures in ``docs/reliability.md``.

Three parts, all driven by the test suite's own data (``tests/reliability``), so the report and the
tests can never disagree about what was checked:

1. the fault matrix (``matrix.ROWS``): every sandbox fault x variant, one paid generation each, with the
   sync and the async client, audited against the sandbox's settlement record;
2. load: ``load_jobs`` concurrent generations from one async process, then ``processes`` processes
   paying from one SQLite budget that admits only ``admitted`` payments;
3. bad input: every parser of untrusted data under hypothesis (``fuzz.TARGETS``);
4. a real chain (``chain.CHAIN_ROWS``): payments on Circle's USDC over anvil, audited against the chain.

Exit status 1 if anything was lost, paid twice, over the cap, or not as the matrix says.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from tests.reliability.chain import CHAIN_ROWS, ChainResult, run_chain_row
from tests.reliability.fuzz import TARGETS, fuzz_context, run_target
from tests.reliability.load import LoadReport, shared_budget, single_process
from tests.reliability.matrix import ROWS, Result, Row, run_row
from tests.reliability.profile import PROFILES, Profile, current

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "docs" / "reliability.md"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------- runs


def run_matrix(workdir: Path) -> list[Result]:
    results = []
    for i, row in enumerate(ROWS, 1):
        result = run_row(row, workdir / f"row-{i}")
        mark = "ok" if result.ok else "FAILED: " + "; ".join(result.problems)
        log(
            f"  [{i:>2}/{len(ROWS)}] {row.fault} [{row.variant}] {row.client}: {result.trace.outcome} "
            f"({result.seconds:.1f} s) {mark}"
        )
        results.append(result)
    return results


def run_chain(workdir: Path) -> list[ChainResult]:
    results = []
    for i, (name, client, expected) in enumerate(CHAIN_ROWS, 1):
        result = run_chain_row(name, client, expected, workdir / f"chain-{i}")
        mark = "ok" if result.ok else "FAILED: " + "; ".join(result.problems)
        log(f"  [{i}/{len(CHAIN_ROWS)}] {name} {client}: {mark}")
        results.append(result)
    return results


def chain_table(results: list[ChainResult]) -> list[str]:
    lines = [
        "| row | client | expected outcome | result | AuthorizationUsed logs | USDC moved | ledger | seconds |",
        "|---|---|---|---|---:|---:|---|---:|",
    ]
    lines += [
        f"| {r.name} | {r.client} | {r.expected} | {'ok' if r.ok else 'FAILED'} | {r.settled} | "
        f"{r.moved / 1e6:.6f} | {r.ledger} | {r.seconds:.1f} |"
        for r in results
    ]
    return lines


def run_fuzz(profile: Profile, workdir: Path) -> list[tuple[str, str, int, str]]:
    """(target, what, inputs tried, "ok" or the failure) per parser."""
    rows = []
    with fuzz_context(workdir) as fuzz:
        for target in TARGETS:
            started = time.perf_counter()
            try:
                tried, verdict = run_target(target, fuzz, profile.fuzz_examples), "ok"
            except Exception as exc:  # a falsifying example: report it, keep going
                tried, verdict = -1, f"FAILED: {type(exc).__name__}: {str(exc)[:300]}"
            log(f"  {target.name}: {tried} inputs in {time.perf_counter() - started:.1f} s, {verdict}")
            rows.append((target.name, target.what, tried, verdict))
    return rows


# --------------------------------------------------------------------------------------------- tables


def _pair(results: list[Result]) -> list[tuple[Row, Result, Result]]:
    by_id = {(r.row.fault, r.row.variant, r.row.client): r for r in results}
    pairs = []
    for result in results:
        row = result.row
        if row.client == "sync":
            pairs.append((row, result, by_id[(row.fault, row.variant, "async")]))
    return pairs


def _observed(result: Result) -> str:
    return "ok" if result.ok else f"**{result.trace.outcome}**: {'; '.join(result.problems)}"


def matrix_table(results: list[Result]) -> list[str]:
    lines = [
        "| fault | variant | server | expected outcome | sync | async | settled | ledger | X-PAYMENT sent |",
        "|---|---|---|---|---|---|---:|---|---:|",
    ]
    for row, sync, async_ in _pair(results):
        sends = f"{len(sync.trace.sent)}x, 1 header" if sync.trace.sent else "0"
        lines.append(
            f"| `{row.fault}` | {row.variant} | {row.server} | {row.expect.value} | {_observed(sync)} | "
            f"{_observed(async_)} | {sync.settled} | {sync.ledger} | {sends} |"
        )
    return lines


def load_table(single: LoadReport, shared: LoadReport) -> list[str]:
    lines = [
        "| run | attempted | completed | refused by the cap | settled (sandbox) | paid (ledger) | cap "
        "| wall | client CPU / job | client peak RSS | problems |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, report in (("1 async process", single), (f"{shared.processes} processes, one SQLite budget", shared)):
        cap = "-" if report.cap is None else str(report.cap)
        lines.append(
            f"| {name} | {report.attempted} | {report.completed} | {report.refused} | {report.settled} | "
            f"{report.ledger_paid} | {cap} | {report.wall:.1f} s | {report.cpu_ms_per_job:.1f} ms | "
            f"{report.peak_rss_mib:.0f} MiB (+{report.rss_growth_kib_per_job:.0f} KiB/job) | "
            f"{'; '.join(report.problems) or 'none'} |"
        )
    return lines


def fuzz_table(rows: list[tuple[str, str, int, str]]) -> list[str]:
    lines = ["| parser of untrusted input | inputs tried | result |", "|---|---:|---|"]
    lines += [f"| {what} (`{name}`) | {tried} | {verdict} |" for name, what, tried, verdict in rows]
    return lines


# --------------------------------------------------------------------------------------------- report


def report(
    profile: Profile,
    results: list[Result],
    single: LoadReport,
    shared: LoadReport,
    fuzz: list[tuple[str, str, int, str]],
    seconds: float,
    command: str,
    chain: list[ChainResult] | None = None,
) -> tuple[str, bool]:
    chain = chain or []
    lost = sum(r.lost for r in results) + single.lost + shared.lost + sum(r.lost for r in chain)
    double = (
        sum(r.double_paid for r in results)
        + single.double_paid
        + shared.double_paid
        + sum(r.double_paid for r in chain)
    )
    settled = sum(r.settled for r in results)
    paid = sum(r.paid for r in results)
    unknown_settled = settled - paid
    unknown = sum(r.unknown for r in results)
    failed_rows = [r for r in results if not r.ok]
    tried = sum(t for _, _, t, _ in fuzz if t > 0)
    fuzz_failed = [name for name, _, _, verdict in fuzz if verdict != "ok"]
    ok = not failed_rows and not single.problems and not shared.problems and not fuzz_failed and not lost and not double
    ok = ok and all(r.ok for r in chain)
    today = dt.date.today().isoformat()
    lines = [
        "# Reliability: every known agent-payment failure",
        "",
        f"Produced by `{command}` on {today} (profile `{profile.name}`: {profile.load_jobs} concurrent jobs, "
        f"{profile.processes} processes x {profile.jobs_per_process} jobs on one budget admitting "
        f"{profile.admitted}, {profile.fuzz_examples} inputs per parser), {platform.python_implementation()} "
        f"{platform.python_version()} on {os.cpu_count()} cores, {seconds:.0f} s in all. "
        "CI runs the same checks as `pytest tests/reliability` (profile `short`; "
        "`IMAGINE_RELIABILITY_PROFILE=long` for the full sizes).",
        "",
        f"**lost: {lost}, double-paid: {double}** — {'all checks passed' if ok else 'SOME CHECKS FAILED'}.",
        "",
        "## Fault matrix",
        "",
        "Each line is one paid generation (create, wait, download) against a real sandbox server on loopback "
        "with the fault armed, once with `ImagineClient` and once with `AsyncImagineClient`, each with a real "
        "wallet and SQLite ledger. `ok` means every check held: the outcome is the expected one; the sandbox "
        "settled exactly the payments the row says; its settlements equal the ledger's paid payments plus "
        "`unknown` ones where the answer was lost; no nonce or request settled twice; one signature and one "
        "X-PAYMENT value however often it was re-sent; every settled taskId is in the ledger; the caller's "
        "progress never went backwards; the fault fired. *Replaying* servers answer a re-sent settled header "
        "with its taskId (`idempotent_replay=true`), *naive* ones with `402 nonce_already_used`.",
        "",
        *matrix_table(results),
        "",
        f"{len(results)} runs: the sandbox settled {settled} payments = {paid} paid in the ledger + "
        f"{unknown_settled} `unknown` whose answer was lost ({unknown} `unknown` in all: "
        f"{unknown - unknown_settled} never settled, e.g. 5xx before settlement every time, and count as spent "
        "until reconciled).",
        "",
        "## Real chain",
        "",
        "Each line runs on a fresh `imagine-agent devnet` (anvil 1.7.1, Circle's FiatTokenV2_2 at Base's USDC "
        "address) with the sandbox settling there (`--rpc-url`), audited against the chain: the payer's "
        "`AuthorizationUsed` logs, the USDC that moved to the payee, the ledger.",
        "",
        *chain_table(chain),
        "",
        "## Load",
        "",
        "The sandbox runs in its own process (real uvicorn, time-scaled x"
        f"{profile.speed:g}: a 1-3 minute job takes {60 / profile.speed:g}-{180 / profile.speed:g} s); "
        "each client is its own process, so CPU and memory are the client's alone (CPU: user+system of all "
        "its threads while the jobs ran; peak RSS: VmHWM).",
        "",
        *load_table(single, shared),
        "",
        "## Bad input",
        "",
        "Hypothesis inputs per parser; each must end in a value or a clear error (`ImagineError`, "
        "pydantic's `ValidationError` for `Settings`, `ValueError` naming the file for fault files), never "
        "an unhandled exception, never a payment for a requirement the policy refuses.",
        "",
        *fuzz_table(fuzz),
        "",
        f"{tried} inputs tried, {len(fuzz_failed)} parser(s) failed.",
        "",
    ]
    return "\n".join(lines), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reliability", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=None,
        help="short (CI sizes) or long (1,000 jobs, 8 processes); default: IMAGINE_RELIABILITY_PROFILE or short",
    )
    parser.add_argument("--output", type=Path, default=REPORT, help=f"markdown report (default {REPORT})")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    profile = current(args.profile)
    command = f"python -m benchmarks.reliability --profile {profile.name}"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="imagine-reliability-") as tmp:
        work = Path(tmp)
        log(f"fault matrix: {len(ROWS)} runs")
        results = run_matrix(work / "matrix")
        log(f"load: {profile.load_jobs} concurrent jobs in one process")
        single = single_process(profile, work / "load-one")
        log(f"load: {profile.processes} processes x {profile.jobs_per_process} jobs, one budget of {profile.admitted}")
        shared = shared_budget(profile, work / "load-shared")
        log(f"bad input: {len(TARGETS)} parsers x {profile.fuzz_examples} inputs")
        fuzz = run_fuzz(profile, work / "fuzz")
        log(f"real chain: {len(CHAIN_ROWS)} rows on Circle's USDC over anvil")
        chain = run_chain(work / "chain")
    text, ok = report(profile, results, single, shared, fuzz, time.perf_counter() - started, command, chain)
    print(text)
    if not args.no_write:
        args.output.write_text(text, encoding="utf-8")
        log(f"wrote {args.output}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
