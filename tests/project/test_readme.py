"""The README's promises: its first two commands are the ones CI runs, it stays a doorway into docs/, and the
Python snippets of the README and of the reference pages run. The reference keeps its contracts: every setting,
extra and exit code is documented."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.readme import PAGES, README, ROOT, SURFACES, blocks, links, page

README_LIMIT = 20_000  # bytes: a doorway, not the reference (issue 21)


def test_first_two_blocks_are_the_main_job_and_the_tests() -> None:
    (lang1, main_job), (lang2, tests) = blocks(README)[:2]
    assert lang1 == lang2 == "bash"
    assert main_job.strip().startswith("python3 -m pip install -e . && imagine-agent chat ")
    assert tests.strip() == 'python3 -m pip install -e ".[dev]" && python3 -m pytest'
    assert tests.strip() in (ROOT / ".ci" / "run").read_text()


def test_the_readme_is_a_doorway() -> None:
    assert len(README.encode()) <= README_LIMIT
    linked = {target.split("#")[0] for target in links(README)}
    missing = [p.name for p in PAGES if f"docs/{p.name}" not in linked]
    assert missing == [], f"reference pages the README does not link: {missing}"


def _anchors(text: str) -> set[str]:
    """Heading ids as MkDocs' toc extension makes them (and forges, for these plain headings)."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", text, flags=re.S), re.M)
    return {re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", h).strip().lower()) for h in headings}


@pytest.mark.parametrize("source", ["README.md", *(f"docs/{p.name}" for p in PAGES)])
def test_relative_links_resolve(source: str) -> None:
    """Read on a forge, every relative link lands on a file, and every #anchor on a heading of it."""
    path = ROOT / source
    for target in links(path.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        assert resolved.exists(), f"{source}: {target}"
        if anchor and resolved.suffix == ".md":
            assert anchor in _anchors(resolved.read_text()), f"{source}: {target}"


# The surfaces page's blocks run in tests/e2e/test_docs.py, with what each must print.
PYTHON_SNIPPETS = list(
    dict.fromkeys(
        code
        for text in (README, *(p.read_text() for p in PAGES if p.name != SURFACES))
        for lang, code in blocks(text)
        if lang == "python"
    )
)


def test_the_python_snippets_are_found() -> None:
    assert len(PYTHON_SNIPPETS) >= 2  # the service (README, docs/python.md) and the async client


@pytest.mark.e2e
@pytest.mark.parametrize("code", PYTHON_SNIPPETS, ids=[f"snippet{i}" for i in range(len(PYTHON_SNIPPETS))])
def test_python_snippets_run(code: str, tmp_path: Path) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(code)
    env = {**os.environ, "IMAGINE_DATA_DIR": str(tmp_path / "data")}
    env.pop("IMAGINE_BASE_URL", None)
    run = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
    )
    assert run.returncode == 0, run.stderr[-3000:]


def test_every_setting_is_documented_with_its_variable_and_toml_key() -> None:
    from imagine_agent.config import Settings

    reference = page("configuration.md")
    for name in Settings.model_fields:
        assert f"`IMAGINE_{name.upper()}` / `{name}`" in reference, name


def test_the_readme_lists_the_extras() -> None:
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in extras:
        assert f"[{extra}]" in README, extra


def test_the_cli_reference_lists_every_exit_code() -> None:
    reference = page("cli.md")
    for code in (*range(8), 130):
        assert f"| `{code}` |" in reference, code
