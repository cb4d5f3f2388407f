"""Benchmarks that cannot rot: every section of ``python -m benchmarks`` runs end to end at its tiniest.

``--tiny`` runs each section with the smallest sizes and one round, and writes nothing; its numbers mean
nothing and nothing about them is asserted. What is asserted: the section ran (exit 0, rows printed),
and no row says it failed or could not run. A skip is allowed only where the run lacks something on
purpose (no PostgreSQL given, no x402 SDK installed), never because the benchmark broke.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.__main__ import SECTIONS

ROOT = Path(__file__).resolve().parents[2]
# Locally a section may skip for a missing optional part; under CI every part is installed, so none may skip.
ALLOWED_SKIPS = (
    () if os.environ.get("CI") else ("set IMAGINE_TEST_POSTGRES_URL", "psycopg is not installed", "x402 SDK")
)


@pytest.mark.e2e
@pytest.mark.parametrize("section", list(SECTIONS))
def test_each_section_runs_in_its_tiny_form(section: str, tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    written = [
        ROOT / "docs" / "performance.md",
        ROOT / "benchmarks" / "results" / "latest.json",
        ROOT / "docs" / "performance-polling.md",
        ROOT / "docs" / "reliability.md",
    ]
    before = {path: path.stat().st_mtime_ns for path in written if path.exists()}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--tiny", "--only", section, "--json", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert {path: path.stat().st_mtime_ns for path in written if path.exists()} == before  # tiny writes nothing
    rows = json.loads(out.read_text())["rows"]
    assert rows, "the section produced no rows"
    for row in rows:
        note = row.get("note") or ""
        assert not note.startswith("failed:"), f"{row['name']}: {note}"
        if note.startswith("skipped:"):
            assert any(reason in note for reason in ALLOWED_SKIPS), f"{row['name']}: {note}"
