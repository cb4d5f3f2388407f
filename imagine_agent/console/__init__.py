"""``imagine-agent console``: the operator's web console over the shared ledger (see ``app``)."""

from __future__ import annotations

from .app import ConsoleServer, create_app

__all__ = ["ConsoleServer", "create_app"]
