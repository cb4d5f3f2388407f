"""Load: concurrent paid generations from one async process, and processes sharing one SQLite budget.

Sizes from the profile (``IMAGINE_RELIABILITY_PROFILE``): short (CI) 100 jobs and 4 processes, long
1,000 jobs and 8 processes. The sandbox runs in its own process (real uvicorn), time-scaled.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .load import shared_budget, single_process
from .profile import Profile

pytestmark = pytest.mark.e2e


def test_concurrent_generations_from_one_async_process(profile: Profile, tmp_path: Path) -> None:
    report = single_process(profile, tmp_path)
    print(
        f"\n{profile.name}: {report.completed}/{report.attempted} completed in {report.wall:.1f} s; client "
        f"{report.cpu_ms_per_job:.1f} ms CPU/job, peak RSS {report.peak_rss_mib:.0f} MiB "
        f"(+{report.rss_growth_kib_per_job:.0f} KiB/job)"
    )
    assert report.problems == []
    assert report.completed == report.settled == report.ledger_paid == profile.load_jobs
    assert report.lost == report.double_paid == 0


def test_processes_sharing_one_budget_never_pay_over_the_cap(profile: Profile, tmp_path: Path) -> None:
    report = shared_budget(profile, tmp_path)
    print(
        f"\n{profile.name}: {report.processes} processes, {report.attempted} attempts, cap {report.cap}: "
        f"{report.settled} settled, {report.refused} refused"
    )
    assert report.problems == []
    assert report.settled == report.ledger_paid == profile.admitted
    assert report.refused == profile.attempted - profile.admitted
    assert all(c.outcomes.get("completed", 0) + c.outcomes.get("refused", 0) == c.jobs for c in report.clients)
