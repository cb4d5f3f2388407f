"""The README's promises: its first two commands are the ones CI runs, and its Python snippets run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.readme import README as _README
from tests.readme import ROOT, SURFACES_TITLE, blocks, blocks_outside

BLOCKS = blocks(_README)


def test_first_two_blocks_are_the_main_job_and_the_tests() -> None:
    (lang1, main_job), (lang2, tests) = BLOCKS[:2]
    assert lang1 == lang2 == "bash"
    assert main_job.strip().startswith("python3 -m pip install -e . && imagine-agent chat ")
    assert tests.strip() == 'python3 -m pip install -e ".[dev]" && python3 -m pytest'
    assert tests.strip() in (ROOT / ".ci" / "run").read_text()


# The surfaces section's blocks run in tests/surfaces/test_docs.py, with what each must print.
PYTHON_SNIPPETS = [code for lang, code in blocks_outside(SURFACES_TITLE) if lang == "python"]


@pytest.mark.e2e
@pytest.mark.parametrize("code", PYTHON_SNIPPETS, ids=[f"snippet{i}" for i in range(len(PYTHON_SNIPPETS))])
def test_python_snippets_run(code: str, tmp_path: Path) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(code)
    env = {**os.environ, "IMAGINE_DATA_DIR": str(tmp_path / "data")}
    env.pop("IMAGINE_BASE_URL", None)
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]


def test_every_setting_is_documented_with_its_variable_and_toml_key() -> None:
    from imagine_agent.config import Settings

    readme = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`IMAGINE_{name.upper()}` / `{name}`" in readme, name


def test_the_readme_lists_the_extras_and_every_exit_code() -> None:
    import tomllib

    readme = (ROOT / "README.md").read_text()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in extras:
        assert f"[{extra}]" in readme, extra
    for code in range(8):
        assert f"| `{code}` |" in readme, code
