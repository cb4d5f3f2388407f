"""Fixtures for the console tests: a sandbox on loopback, a funded key, a data dir, the console, a browser.

The browser is Debian's chromium driven by Playwright (``executable_path``: the registry's browser download
is unreachable). Under CI a missing browser fails the tests; elsewhere they skip, naming the setup script.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from imagine_agent.config import Settings
from imagine_agent.console import ConsoleServer
from imagine_agent.ledger import Ledger, open_ledger
from imagine_agent.sandbox import SandboxConfig, SandboxServer
from imagine_agent.x402 import PrivateKeySigner
from tests.embedded import subprocess_env

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing(what: str) -> None:
    message = f"{what} is missing: run .ci/setup-browser.sh (and pip install -e '.[dev]')"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Operator:
    """One operator's world: a data dir (the shared ledger), a key, the sandbox, the environment for children."""

    data_dir: Path
    key: str
    sandbox: SandboxServer
    env: dict[str, str]

    def settings(self, **overrides: Any) -> Settings:
        fields: dict[str, Any] = {
            "base_url": self.sandbox.url,
            "data_dir": self.data_dir,
            "private_key": self.key,
            "allow_private_image_urls": True,
            "poll_first": 0.05,
            "poll_floor": 0.05,
            "poll_cap": 0.2,
            **overrides,
        }
        return Settings(**fields)

    def ledger(self) -> Ledger:
        return open_ledger(self.data_dir / "ledger.sqlite3")


@pytest.fixture
def operator(tmp_path: Path) -> Iterator[Operator]:
    key = PrivateKeySigner.generate().export_private_key()
    data = tmp_path / "data"
    data.mkdir()
    # A stand-in for the real API (it does not claim to be the sandbox): its payments land in the operator's ledger.
    with SandboxServer(SandboxConfig(speed=150, announce_sandbox=False)) as sandbox:
        env = subprocess_env(
            data,
            IMAGINE_PRIVATE_KEY=key,
            IMAGINE_POLL_FIRST="0.05",
            IMAGINE_POLL_FLOOR="0.05",
            IMAGINE_POLL_CAP="0.2",
            IMAGINE_ALLOW_PRIVATE_IMAGE_URLS="1",
        )
        yield Operator(data, key, sandbox, env)


@pytest.fixture
def console(operator: Operator) -> Iterator[ConsoleServer]:
    with operator.ledger() as ledger, ConsoleServer(ledger, operator.settings()) as server:
        yield server


@pytest.fixture(scope="module")  # Playwright's sync API holds an event loop: never past this module's sync tests
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright")
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        _missing("chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, console: ConsoleServer) -> Iterator[Any]:
    """A fresh browser context logged in through the console's token URL."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(30_000)
    opened.goto(console.login_url)
    yield opened
    context.close()


def screenshot(page: Any, name: str) -> Path:
    """Save the page as a test artifact (tests/artifacts/, not committed)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"console-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
