"""Shared fixtures: a real sandbox on loopback, ledgers, wallets and clients wired to them.

Also the run's shape: every test gets an isolated environment (``tests/isolation.py``); the ``slow`` marker is
set here by folder and file (``pytest -m "not slow"`` is the fast subset), and tests that share a costly
per-worker fixture (the anvil devnet, the browser, a built wheel) run on one pytest-xdist worker together.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer.testing

from imagine_agent import flows
from imagine_agent.client import AsyncImagineClient, ImagineClient
from imagine_agent.ledger import Caps, Ledger, open_ledger
from imagine_agent.polling import PollPolicy
from imagine_agent.sandbox import SandboxConfig, SandboxServer, create_app
from imagine_agent.wallet import PaymentPolicy, Wallet
from imagine_agent.x402 import PrivateKeySigner
from tests import hypothesis_profiles
from tests.isolation import isolate

# The services on the embedded sandbox (``settings``, ``service``, ``runtime``) and the subprocess environment,
# shared by the mcp/, plugin/, e2e/ and console/ tests.
pytest_plugins = ["tests.embedded"]

hypothesis_profiles.load()  # ci (CI=true, and the default): derandomized; HYPOTHESIS_PROFILE=dev: random, 10x

FAST_POLL = PollPolicy(first=0.02, floor=0.02, cap=0.2)
# The same for a service under test (``Settings(**FAST_POLL_SETTINGS, ...)``): all three, since with only the first
# poll short a job first seen queued waits for the 15 s tick.
FAST_POLL_SETTINGS = {"poll_first": FAST_POLL.first, "poll_floor": FAST_POLL.floor, "poll_cap": FAST_POLL.cap}
SPEED = 600.0  # sandbox jobs of 60-180 s take 0.1-0.3 s
# Tests where the answer to a paid create is lost: the client gives up after LOST_ANSWER_TIMEOUT seconds, the sandbox
# holds that answer for LOST_ANSWER_HELD. The unpaid create before it is answered at once, but on a loaded machine
# "at once" has reached 0.4 s: that answer timed out too, nothing was signed, and the test failed by chance. The
# timeout leaves it a wide margin; the answer comes a full second after it, so it cannot arrive in time by chance.
LOST_ANSWER_TIMEOUT = 1.0
LOST_ANSWER_HELD = 2.0

TESTS = Path(__file__).resolve().parent
# The slow profile: real chains, browsers, the official npm/PyPI x402 implementations, node clients, subprocess
# surfaces, load and fuzz runs, and the files that start servers or child processes per test. The rest (units,
# in-process apps, servers in threads) is the fast subset.
# Whole folders for the suites apart (and the console, all real servers); files for the slow ones among a package's
# unit tests.
SLOW_FOLDERS = frozenset({"benchmarks", "chain", "console", "e2e", "interop", "reliability"})
SLOW_FILES = frozenset(
    {
        "cli/test_secrets.py",
        "cli/test_edges.py",  # the CLI as a process, signalled mid-payment
        "service/test_books.py",  # the README commands and the social bot as processes
        "project/test_packaging.py",
        "sandbox/test_sandbox_e2e.py",
        "mcp/test_mcp_http_cancel.py",
        "mcp/test_mcp_real_clients.py",
        "mcp/test_mcp_server.py",
        "mcp/test_mcp_stateless_reissue.py",
        "mcp/test_mcp_typescript.py",
        "plugin/test_plugin.py",
        "plugin/test_plugin_elizaos.py",
        "plugin/test_plugin_elizaos_selection.py",
    }
)
# Fixture -> xdist group: tests using one of these costly fixtures go to one worker, so it is set up once.
# ``openai_url``: the two tests that import langchain-openai (1.5 s of CPU) pay it in one worker, not in four.
GROUPS = {
    "devnet_session": "devnet",
    "browser": "browser",
    "wheel": "wheel",
    "shared_context": "tools",
    "openai_url": "openai",
}


def pytest_configure(config: pytest.Config) -> None:
    """Bytecode caches on, for this run and every process it starts, even where the shell sets
    ``PYTHONDONTWRITEBYTECODE=1`` (this machine's does). The suite starts some 300 Python processes; without the
    caches each one recompiles the package from source, and every xdist worker re-rewrites every test module's
    asserts: a third of a CLI process's start and 6 of a worker's 18 s of collection. Python's default, which is
    what the README's timings assume; ``__pycache__/`` is in ``.gitignore``."""
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
        sys.dont_write_bytecode = False


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: two workers per core, and one more. Half a test's time here is spent waiting on the processes and
    servers it started (the CLI, node, chromium, anvil, a sandbox): one worker per core leaves the cores half idle,
    two leave them 10 % idle, and the fifth of two cores fills most of that (docs/contributing.md has the runs)."""
    return 2 * (os.cpu_count() or 1) + 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    xdist = config.pluginmanager.hasplugin("xdist")
    for item in items:
        where = Path(item.path).resolve().relative_to(TESTS)
        if where.parts[0] in SLOW_FOLDERS or where.as_posix() in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
        group = next((GROUPS[name] for name in item.fixturenames if name in GROUPS), None)
        if xdist and group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(autouse=True, scope="session")
def one_click_command_per_app() -> Iterator[None]:
    """``CliRunner.invoke`` has typer rebuild the whole click command from the app's annotations on every call
    (~40 ms, some 200 calls a run). The app does not change during a run, so each app's command is built once;
    parsing, callbacks and output still run per call, as in a real process."""
    build = typer.testing._get_command
    built: dict[int, tuple[typer.Typer, Any]] = {}

    def cached(app: typer.Typer) -> Any:
        if id(app) not in built:
            built[id(app)] = (app, build(app))
        return built[id(app)][1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typer.testing, "_get_command", cached)
        yield


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No IMAGINE_* setting from the developer's shell; the data dir and XDG dirs in a fresh tmp folder."""
    isolate(monkeypatch, tmp_path_factory.mktemp("home"))


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's retry backoff ten times shorter (50 ms doubling to 0.8 s, not 0.5 s to 8 s). Rows that exhaust
    the retries otherwise spend seconds asleep, which proves nothing about their outcome; the number of attempts and
    every decision between them stay the client's own."""
    backoff = flows.backoff
    monkeypatch.setattr(flows, "backoff", lambda attempt, base=0.5, cap=8.0: backoff(attempt, base / 10, cap / 10))


class CountingSigner:
    """A real key that counts its signatures (money tests assert on the count)."""

    def __init__(self) -> None:
        self.inner = PrivateKeySigner.generate()
        self.signed = 0

    @property
    def address(self) -> str:
        return self.inner.address

    def sign_typed_data(self, typed_data: Any) -> bytes:
        self.signed += 1
        return self.inner.sign_typed_data(typed_data)


@pytest.fixture
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(announce_sandbox=False, speed=SPEED)) as server:
        yield server


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = open_ledger(tmp_path / "ledger.sqlite3")
    yield led
    led.close()


@pytest.fixture
def counting_signer() -> CountingSigner:
    return CountingSigner()


@pytest.fixture
def make_wallet(ledger: Ledger, counting_signer: CountingSigner) -> Callable[..., Wallet]:
    def make(
        *,
        per_call: int = 5_000_000,
        daily: int | None = 20_000_000,
        total: int | None = 100_000_000,
        approval_threshold: int | None = None,
        approver: Any = None,
        **policy: Any,
    ) -> Wallet:
        caps = Caps(per_call=per_call, daily=daily, total=total)
        return Wallet(
            counting_signer,
            ledger,
            PaymentPolicy(caps=caps, approval_threshold=approval_threshold, **policy),
            approver=approver,
        )

    return make


@pytest.fixture
def imagine_client(sandbox_server: SandboxServer, make_wallet: Callable[..., Wallet]) -> Iterator[ImagineClient]:
    with ImagineClient(sandbox_server.url, wallet=make_wallet(), poll=FAST_POLL, allow_private_image_urls=True) as c:
        yield c


@pytest.fixture
async def async_imagine_client(make_wallet: Callable[..., Wallet]) -> Any:
    """The async client on the sandbox in-process (ASGI), no sockets."""
    app = create_app(SandboxConfig(announce_sandbox=False, speed=SPEED))
    transport = httpx.ASGITransport(app=app)
    async with AsyncImagineClient(
        "http://sandbox.test", wallet=make_wallet(), transport=transport, poll=FAST_POLL
    ) as c:
        c.sandbox_state = app.state.sandbox  # type: ignore[attr-defined]
        yield c
