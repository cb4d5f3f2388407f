"""The built wheel installs into a fresh venv and serves imagine_agent.tools / .prompts from there.

No top-level ``tools`` or ``prompts`` package may land in site-packages (they reach the package
through relative symlinks that hatchling follows).
"""

from __future__ import annotations

import json
import site
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

import imagine_agent

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("*.whl")
    return built


def test_wheel_has_one_top_level_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"imagine_agent", f"imagine_agent-{imagine_agent.__version__}.dist-info"}
    assert "imagine_agent/tools/__init__.py" in names
    assert any(n.startswith("imagine_agent/prompts/") and n.endswith(".md") for n in names) or not list(
        (ROOT / "prompts").glob("*.md")
    )


def test_wheel_installs_into_a_fresh_venv_and_imports_elsewhere(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)  # pip below is ours, aimed at it (ensurepip: 6 s of CPU)
    python = env_dir / "bin" / "python"
    # The third-party dependencies come from the interpreter running the tests (no network), whether that
    # is a venv or the system Python: its site-packages directories are appended to the new venv's path by
    # a .pth file. "system_site_packages" would not do: inside a venv it means the base interpreter, which
    # lacks them. Entries of a .pth are plain paths, so the .pth files in those directories (the editable
    # install of this checkout) are not processed: imagine_agent can only come from the wheel.
    target = subprocess.run(
        [str(python), "-c", "import site; print(site.getsitepackages()[0])"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    ours = [p for p in (*site.getsitepackages(), site.getusersitepackages()) if Path(p).is_dir()]
    (Path(target) / "_test_dependencies.pth").write_text("".join(f"{p}\n" for p in ours))
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet", str(wheel)],
        check=True,
        timeout=300,
    )
    probe = (
        "import json, pathlib, site, imagine_agent, imagine_agent.tools, imagine_agent.prompts;"
        "print(pathlib.Path(imagine_agent.__file__).resolve());"
        "print(pathlib.Path(imagine_agent.tools.__file__).resolve());"
        "print(json.dumps(sorted(p.name for p in pathlib.Path(site.getsitepackages()[0]).iterdir())))"
    )
    out = subprocess.run(
        [str(python), "-c", probe], cwd=tmp_path, check=True, capture_output=True, text=True, timeout=120
    ).stdout.splitlines()
    site_dir = str(env_dir.resolve())
    assert out[0].startswith(site_dir) and out[1].startswith(site_dir)
    top_level = json.loads(out[2])
    assert "tools" not in top_level and "prompts" not in top_level
    assert "imagine_agent" in top_level


def test_sdist_carries_the_readme_and_the_reference(tmp_path: Path) -> None:
    """The tests that pin the docs run from an unpacked sdist too: README, docs/ and mkdocs.yml travel with it."""
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--no-isolation", "-o", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(built) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    expected = {
        "README.md",
        "mkdocs.yml",
        "docs/console.png",
        "tests/readme.py",
        *(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")),
    }
    assert expected <= names, sorted(expected - names)
