"""Fixtures for the sandbox tests: an in-process app on a fake clock, a payer key, a client over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from imagine_agent.sandbox import Sandbox, SandboxConfig, create_app
from imagine_agent.x402 import PrivateKeySigner
from tests.sandbox.support import FakeClock

BASE = "http://sandbox.test"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def payer_key() -> PrivateKeySigner:
    return PrivateKeySigner.generate()


@pytest.fixture
def make_app(clock: FakeClock) -> Callable[..., Starlette]:
    """A sandbox app on the fake clock; keyword arguments override ``SandboxConfig`` fields."""

    def make(**overrides: Any) -> Starlette:
        return create_app(SandboxConfig(**{"clock": clock, **overrides}))

    return make


@pytest.fixture
def app(make_app: Callable[..., Starlette]) -> Starlette:
    return make_app()


@pytest.fixture
def sandbox_state(app: Starlette) -> Sandbox:
    state: Sandbox = app.state.sandbox
    return state


@pytest.fixture
async def asgi_client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=BASE) as c:
        yield c
