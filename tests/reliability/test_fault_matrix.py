"""Every row of the fault matrix (``matrix.ROWS``) is a test: it fails when the row's outcome changes.

Each row runs one paid generation against a real sandbox server with the fault armed, then audits the
sandbox's own settlement record against the ledger (see ``matrix.py``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from imagine_agent.sandbox.config import FAULT_KINDS

from .matrix import ROWS, SCENARIOS, Outcome, Row, run_row

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("fast_retries")]


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_fault_matrix_row(row: Row, tmp_path: Path) -> None:
    result = run_row(row, tmp_path)
    assert result.problems == [], f"{row.fault} [{row.variant}, {row.client}, {row.server} server]"


def test_the_matrix_covers_every_fault_and_variant() -> None:
    assert {row.fault for row in ROWS} == set(FAULT_KINDS) | set(SCENARIOS)
    assert len({row.id for row in ROWS}) == len(ROWS)
    for kind in (*FAULT_KINDS, *SCENARIOS):
        assert {row.client for row in ROWS if row.fault == kind} == {"sync", "async"}, kind
    for kind in (
        "error_after_settle",
        "drop_after_payment",
        "delay",
        "payment_required_after_settle",
        "malformed_json",
        "status_after_payment",
        "oversized_answer",
        "compressed_bomb",
    ):  # a lost answer after settlement: replaying and naive servers differ
        assert {row.replay for row in ROWS if row.fault == kind} == {True, False}, kind
    drop_settles = {
        row.arm[0].get("params", {}).get("settle", True) for row in ROWS if row.fault == "drop_after_payment"
    }
    assert drop_settles == {True, False}
    assert {row.expect for row in ROWS} == set(Outcome)


def test_a_changed_outcome_fails_its_row(tmp_path: Path) -> None:
    """The audit is not a rubber stamp: expecting anything else than what happens is a failure."""
    row = next(r for r in ROWS if r.fault == "error_after_settle" and not r.replay and r.client == "sync")
    result = run_row(replace(row, expect=Outcome.RESENT, settled=0), tmp_path)
    assert any(p.startswith("outcome 'unknown, counted as spent'") for p in result.problems), result.problems
    assert any("settled 1 payment(s), expected 0" in p for p in result.problems), result.problems
