"""The sandbox's HTTP surface: the Imagine API, an x402 facilitator, and admin endpoints for tests.

One app over one ``Sandbox`` state, from three route tables: ``api.py`` (create, status, media, files),
``facilitator.py`` (``/verify``, ``/settle``, ``/supported``, ``/rpc``) and ``admin.py`` (``/_admin/...``).
Starlette, not FastAPI: every route reads its own request, so FastAPI's injection and validation would go
unused, and its import (0.4-0.6 s of CPU here) was most of the start of every command on the embedded sandbox.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..origin import SANDBOX_HEADER
from .admin import admin_routes
from .api import api_routes
from .config import SandboxConfig
from .facilitator import facilitator_routes
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


async def _http_error(request: Request, exc: Exception) -> Response:
    """An unknown path or method answers JSON ``{"detail": ...}``, as the API's own errors do."""
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def create_app(config: SandboxConfig | None = None) -> Starlette:
    """A fresh sandbox app with its own state at ``app.state.sandbox``."""
    sandbox = Sandbox(config or SandboxConfig())
    routes = [*api_routes(sandbox), *facilitator_routes(sandbox), *admin_routes(sandbox)]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    app.state.sandbox = sandbox
    if sandbox.config.announce_sandbox:
        app.add_middleware(_AnnounceSandbox)
    return app
