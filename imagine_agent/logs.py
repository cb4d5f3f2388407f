"""Quiet library logs on the surfaces: no INFO line per HTTP request or per protocol message.

httpx logs every request at INFO, the MCP SDK every message, uvicorn every access; hosts such as the MCP
SDK and ElizaOS configure the root logger at INFO, so a poll every second would flood the operator's
output. A level the operator set on one of these loggers is kept.
"""

from __future__ import annotations

import logging

__all__ = ["quiet_library_logs"]

CHATTY = ("httpx", "httpcore", "mcp", "uvicorn", "uvicorn.access", "uvicorn.error", "sse_starlette")


def quiet_library_logs() -> None:
    """Raise the chatty libraries' loggers to WARNING, unless the operator chose a level for them."""
    for name in CHATTY:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)
