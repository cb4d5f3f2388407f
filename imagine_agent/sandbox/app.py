"""The sandbox's HTTP surface: the Imagine API, an x402 facilitator, and admin endpoints for tests.

One app over one ``Sandbox`` state, from three routers: ``api.py`` (create, status, media, files),
``facilitator.py`` (``/verify``, ``/settle``, ``/supported``, ``/rpc``) and ``admin.py`` (``/_admin/...``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from ..origin import SANDBOX_HEADER
from .admin import admin_router
from .api import api_router
from .config import SandboxConfig
from .facilitator import facilitator_router
from .state import Sandbox

__all__ = ["create_app"]


class _AnnounceSandbox:
    """Adds ``X-Imagine-Sandbox: 1`` to every answer (plain ASGI, so faults that drop connections stay as they are)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def announce(message: Any) -> None:
            if message["type"] == "http.response.start":
                header = (SANDBOX_HEADER.lower().encode(), b"1")
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        await self.app(scope, receive, announce)


def create_app(config: SandboxConfig | None = None) -> FastAPI:
    """A fresh sandbox app with its own state at ``app.state.sandbox``."""
    sandbox = Sandbox(config or SandboxConfig())
    app = FastAPI(title="Imagine API sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sandbox = sandbox
    if sandbox.config.announce_sandbox:
        app.add_middleware(_AnnounceSandbox)
    app.include_router(api_router(sandbox))
    app.include_router(facilitator_router(sandbox))
    app.include_router(admin_router(sandbox))
    return app
