"""A real chain for the chain tests: anvil with Circle's USDC (FiatTokenV2_2) at Base's address.

One devnet per session; each test runs between an anvil snapshot and its revert, so balances, nonces and
block time start fresh every time. The npm packages come from ``.ci/setup-chain.sh`` (the pinned
lockfiles); under ``CI=true`` their absence fails the tests instead of skipping them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from imagine_agent.config import Settings
from imagine_agent.devnet import Devnet, install_dir
from imagine_agent.sandbox import SandboxConfig, SandboxServer
from imagine_agent.service import ImagineService
from tests.conftest import FAST_POLL_SETTINGS

NODE_DIR = Path(__file__).parent / "node"


def need(ready: bool, what: str) -> None:
    if ready:
        return
    message = f"{what} not installed: run .ci/setup-chain.sh"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def devnet_session() -> Iterator[Devnet]:
    need((install_dir() / ".installed").is_file(), "the devnet's npm packages (anvil, Circle's USDC)")
    with Devnet(payers=2) as net:
        yield net


@pytest.fixture
def devnet(devnet_session: Devnet) -> Iterator[Devnet]:
    snapshot = devnet_session.snapshot()
    yield devnet_session
    devnet_session.revert(snapshot)


@pytest.fixture
def chain_sandbox(devnet: Devnet) -> Iterator[Callable[..., SandboxServer]]:
    """A sandbox server settling on the devnet (started; stopped at teardown)."""
    servers: list[SandboxServer] = []

    def make(**config: Any) -> SandboxServer:
        server = SandboxServer(
            SandboxConfig(speed=600, rpc_url=devnet.rpc_url, relayer_key=devnet.relayer.private_key, **config)
        ).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def make_chain_service(devnet: Devnet, tmp_path: Path) -> Iterator[Callable[..., ImagineService]]:
    services: list[ImagineService] = []

    def make(server: SandboxServer, *, key: str | None = None, rpc: bool = True, **settings: Any) -> ImagineService:
        service = ImagineService.create(
            Settings(
                base_url=server.url,
                private_key=key or devnet.payers[0].private_key,
                data_dir=tmp_path,
                **FAST_POLL_SETTINGS,
                rpc_url=devnet.rpc_url if rpc else None,
                **settings,
            )
        )
        services.append(service)
        return service

    yield make
    for service in services:
        service.close()
