"""Responses that misbehave on purpose: HTML error pages, dropped connections, endless downloads; and the
plain helpers every router shares (``_error``, ``_base``, truncated and mislabelled JSON)."""

from __future__ import annotations

import functools
import json
import logging
import zlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

__all__ = [
    "IN_PROCESS_HUGE_BYTES",
    "REAL_HUGE_BYTES",
    "ConnectionDropped",
    "DroppedResponse",
    "bomb_response",
    "html_error",
    "huge_response",
    "in_process",
    "quiet_dropped_connections",
]

REAL_HUGE_BYTES = 2 * 1024**3
IN_PROCESS_HUGE_BYTES = 64 * 1024**2
_CHUNK = bytes(1024 * 1024)

_TITLES = {500: "500 Internal Server Error", 502: "502 Bad Gateway", 504: "504 Gateway Time-out"}


def html_error(status: int) -> HTMLResponse:
    """What a proxy or a crashed framework sends: an HTML page, no JSON status body."""
    title = _TITLES.get(status, f"{status} Error")
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
    return HTMLResponse(page, status_code=status)


class ConnectionDropped(httpx.RemoteProtocolError):
    """Raised inside the app to break the connection mid-response.

    Over a real server the server closes the socket; through ``httpx.ASGITransport`` the exception
    itself reaches the client, and since it is an ``httpx.RemoteProtocolError`` the client sees the
    same transport error either way.
    """


class DroppedResponse(Response):
    """Promises a body with Content-Length, sends a fragment of it, then drops the connection."""

    def __init__(self, body: bytes, status_code: int = 202) -> None:
        super().__init__(status_code=status_code)
        self._promised = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(self._promised)).encode()),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": self._promised[: len(self._promised) // 2], "more_body": True}
        )
        raise ConnectionDropped("server disconnected mid-response (sandbox fault drop_after_payment)")


def in_process(scope: Scope) -> bool:
    """True under httpx.ASGITransport (and other in-memory callers), which buffer whole response bodies.

    Real ASGI servers announce a ``spec_version``; httpx's transport does not.
    """
    return "spec_version" not in scope.get("asgi", {})


async def _zeros(total: int) -> AsyncIterator[bytes]:
    full, rest = divmod(total, len(_CHUNK))
    for _ in range(full):
        yield _CHUNK  # the same 1 MiB object every time: nothing is allocated per chunk
    if rest:
        yield _CHUNK[:rest]


def huge_response(total: int, *, content_length: bool, media_type: str) -> StreamingResponse:
    """A body of ``total`` zero bytes generated lazily; declared up front unless ``content_length`` is off."""
    headers = {"content-length": str(total)} if content_length else None
    return StreamingResponse(_zeros(total), media_type=media_type, headers=headers)


@functools.lru_cache(maxsize=4)
def _bomb(encoding: str, total: int) -> bytes:
    """``total`` zero bytes compressed: a few hundred KB that inflate to hundreds of MB."""
    compressor: Any
    if encoding == "zstd":
        import zstandard

        compressor = zstandard.ZstdCompressor(level=3).compressobj()
    else:
        compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    parts = []
    full, rest = divmod(total, len(_CHUNK))
    for _ in range(full):
        parts.append(compressor.compress(_CHUNK))
    parts.append(compressor.compress(_CHUNK[:rest]))
    parts.append(compressor.flush())
    return b"".join(parts)


def bomb_response(encoding: str, total: int, headers: dict[str, str]) -> Response:
    """A 202 that says it is JSON and compressed; its body inflates to ``total`` bytes (a decompression bomb)."""
    return Response(
        _bomb(encoding, total),
        status_code=202,
        media_type="application/json",
        headers={**headers, "content-encoding": encoding},
    )


class _DropFilter(logging.Filter):
    """Turns uvicorn's traceback for an intentional drop into one quiet line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ConnectionDropped):
            record.msg, record.args, record.exc_info, record.levelno, record.levelname = (
                "sandbox fault: connection dropped after payment",
                (),
                None,
                logging.INFO,
                "INFO",
            )
        return True


def quiet_dropped_connections() -> None:
    """Install the filter on uvicorn's error logger (idempotent)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DropFilter) for f in logger.filters):
        logger.addFilter(_DropFilter())


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message.encode("utf-8", "replace").decode("utf-8")}, status_code=status)


def _truncated(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    raw = json.dumps(body).encode()
    return Response(raw[: max(1, len(raw) // 2)], status_code=status, media_type="application/json", headers=headers)


def _as_html(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body).encode(), status_code=status, media_type="text/html", headers=headers)
