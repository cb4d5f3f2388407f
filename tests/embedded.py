"""Fixtures for the surface tests: services on the embedded sandbox, fast (speed 200), in a tmp data dir."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from imagine_agent.config import Settings
from imagine_agent.service import ImagineService
from tests.plugin.host import FakeRuntime

ROOT = Path(__file__).resolve().parents[1]
SPEED = "200"


def subprocess_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment for a surface run as a subprocess: no IMAGINE_* from the developer's shell."""
    env = dict(os.environ)  # the autouse isolated_environment dropped IMAGINE_*
    config = data_dir / "empty-imagine.toml"  # not the developer's imagine.toml (a missing one is an error)
    config.parent.mkdir(parents=True, exist_ok=True)
    config.touch()
    env.update(
        {
            "IMAGINE_DATA_DIR": str(data_dir),
            "IMAGINE_SANDBOX_SPEED": SPEED,
            "PYTHONUNBUFFERED": "1",
            "IMAGINE_CONFIG": str(config),
        }
    )
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


PYTHON = sys.executable
# The line ``imagine-agent sandbox`` prints once it is bound, with its URL.
SANDBOX_AT = re.compile(r"Sandbox on (http://[^\s,]+)")


def sandbox_url(process: subprocess.Popen[str]) -> str:
    """The URL ``imagine-agent sandbox --port 0`` printed on stderr. It binds before it prints, so the URL is
    this process's: a port picked free beforehand can be taken by another test's server before it binds."""
    assert process.stderr is not None
    seen: list[str] = []
    for line in process.stderr:
        seen.append(line)
        if found := SANDBOX_AT.search(line):
            return found.group(1)
    raise AssertionError(f"the sandbox exited without printing its URL: {''.join(seen)[-2000:]}")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, sandbox_speed=float(SPEED))


@pytest.fixture
def service(settings: Settings, tmp_path: Path) -> Iterator[ImagineService]:
    with ImagineService.create(settings) as opened:
        opened.output_dir = tmp_path / "videos"
        yield opened


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[FakeRuntime]:
    """A host with the plugin registered the way ElizaOS does it, settings from the character."""
    from imagine_agent.plugin import register

    host = FakeRuntime({"IMAGINE_DATA_DIR": str(tmp_path), "IMAGINE_SANDBOX_SPEED": SPEED})
    await register(host)
    yield host
    await host.stop()
