"""Serving the MCP server: stdio, or streamable HTTP behind a bearer token; what ``imagine-agent mcp``
and ``python -m imagine_agent.mcp_server`` run."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Literal, cast

from ..config import SANDBOX_NOTICE, Settings
from ..errors import ImagineError, exit_code_for
from ..logs import quiet_library_logs
from .lazy import LazyService
from .tools import create_server

if TYPE_CHECKING:
    from ..service import ImagineService

__all__ = ["check_settings", "main", "serve"]


class _BearerAuth:
    """ASGI middleware: every HTTP request needs ``Authorization: Bearer <token>`` (rule 12)."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.token = app, token.encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        import hmac

        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            scheme, _, value = given.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(value.strip(), self.token):
                body = b'{"error":"unauthorized","message":"send Authorization: Bearer <IMAGINE_MCP_TOKEN>"}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b'Bearer realm="imagine-agent"'),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def _http_token(settings: Settings, token: str | None, no_auth: bool) -> str | None:
    """The bearer token for streamable HTTP: given, from IMAGINE_MCP_TOKEN, or generated and printed."""
    if no_auth:
        print(
            "imagine-agent mcp: WARNING: no bearer token (--no-auth): any local process can call this server "
            "and spend its budget.",
            file=sys.stderr,
        )
        return None
    if token:
        return token
    if settings.mcp_token is not None and settings.mcp_token.get_secret_value():
        return settings.mcp_token.get_secret_value()
    import secrets

    generated = secrets.token_urlsafe(32)
    print(
        f"imagine-agent mcp: bearer token for this run (set IMAGINE_MCP_TOKEN to choose one): {generated}\n"
        f"  clients send the header  Authorization: Bearer {generated}",
        file=sys.stderr,
        flush=True,
    )
    return generated


def check_settings(settings: Settings) -> None:
    """What ``ImagineService.create`` would refuse at once, checked without loading it: a wallet."""
    from ..errors import ConfigurationError

    if settings.base_url is not None and settings.private_key is None and settings.keystore is None:
        raise ConfigurationError(
            "no paying wallet: set IMAGINE_PRIVATE_KEY (0x hex) or IMAGINE_KEYSTORE, or create one with "
            "`imagine-agent wallet new`"
        )
    if settings.base_url is not None and settings.private_key is None and settings.keystore_password is None:
        raise ConfigurationError("the keystore needs a password: set IMAGINE_KEYSTORE_PASSWORD")


def serve(
    settings: Settings | None = None,
    *,
    transport: str = "stdio",
    port: int = 8765,
    host: str = "127.0.0.1",
    token: str | None = None,
    no_auth: bool = False,
) -> None:
    """Serve until the client goes away, then close the service (created on the first tool call).
    What ``imagine-agent mcp`` runs.

    Streamable HTTP requires a bearer token (``token``, else ``IMAGINE_MCP_TOKEN``, else one generated and
    printed on stderr) unless ``no_auth`` is set on purpose.
    """
    if transport not in ("stdio", "streamable-http"):
        raise ValueError(f"unknown MCP transport {transport!r}: use stdio or streamable-http")
    quiet_library_logs()
    try:
        settings = settings or Settings()
        check_settings(settings)
    except ImagineError as exc:
        print(f"imagine-agent mcp: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise SystemExit(exit_code_for(exc)) from None
    service = LazyService(settings)
    try:
        if service.is_sandbox:
            print(SANDBOX_NOTICE, file=sys.stderr)  # stdout belongs to the protocol
        server = create_server(cast("ImagineService", service))
        quiet_library_logs()  # MCPServer configures logging when built
        if transport == "stdio":
            server.run("stdio")
        else:
            import uvicorn

            bearer = _http_token(settings, token, no_auth)
            app: Any = server.streamable_http_app(host=host)
            if bearer is not None:
                app = _BearerAuth(app, bearer)
            uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        service.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m imagine_agent.mcp_server [stdio|streamable-http] [port]``; settings from ``IMAGINE_*``."""
    args = sys.argv[1:] if argv is None else argv
    transport: Literal["stdio", "streamable-http"] = "streamable-http" if args[:1] == ["streamable-http"] else "stdio"
    serve(transport=transport, port=int(args[1]) if len(args) > 1 else 8765)


if __name__ == "__main__":
    main()
