"""The reference site: `mkdocs build --strict` passes (no broken link or anchor), every page is in the nav, and
the examples the contributing guide shows are valid."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.readme import PAGES, ROOT, blocks, page


def test_mkdocs_builds_strict(tmp_path: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "site" / "cli" / "index.html").is_file()
    assert (tmp_path / "site" / "console.png").is_file()


def test_every_page_is_in_the_nav_and_work_in_flight_is_excluded() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    nav = set(re.findall(r":\s*(\S+\.md)\s*$", config, re.M))
    assert nav == {p.name for p in PAGES}
    assert re.search(r"^exclude_docs:.*\n\s+changes/", config, re.M), "docs/changes/ must stay out of the site"


def test_the_contributing_fault_file_loads(tmp_path: Path) -> None:
    from imagine_agent.sandbox.config import load_faults

    [toml] = [code for lang, code in blocks(page("contributing.md")) if lang == "toml"]
    (tmp_path / "faults.toml").write_text(toml)
    assert [f.kind for f in load_faults(tmp_path / "faults.toml")] == ["error_after_settle", "delay"]
