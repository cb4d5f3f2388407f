"""Where a ledger lives: a SQLite file path, ``sqlite:///…`` or a ``postgresql://`` URL, and how it is shown."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from ..errors import ConfigurationError


@dataclass(frozen=True)
class LedgerLocation:
    """Where a ledger lives. ``target`` may hold a password, so only ``display`` is ever shown."""

    engine: Literal["sqlite", "postgres"]
    target: str = field(repr=False)  # the SQLite file path, or the PostgreSQL URL as given
    display: str


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def parse_ledger_url(url_or_path: str | os.PathLike[str]) -> LedgerLocation:
    """``postgresql://…`` / ``postgres://…``, ``sqlite:///path`` (SQLAlchemy style), or a plain file path.

    Error messages never repeat the URL: it may contain a password.
    """
    raw = os.fspath(url_or_path)
    if not isinstance(raw, str) or not raw:
        raise ConfigurationError("the ledger location is empty: give a file path or a postgresql:// URL")
    if "\x00" in raw:
        raise ConfigurationError("the ledger location contains a NUL character")
    match = _SCHEME.match(raw)
    if match is None or len(match.group(1)) == 1:  # no scheme, or a Windows drive letter
        path = os.path.expanduser(raw)
        return LedgerLocation("sqlite", path, path)
    scheme = match.group(1).lower()
    if scheme in ("postgresql", "postgres"):
        return LedgerLocation("postgres", raw, _postgres_display(raw))
    if scheme == "sqlite":
        rest = raw[match.end() :]
        if not rest.startswith("/") or len(rest) == 1:
            raise ConfigurationError("a SQLite ledger URL is sqlite:///relative/path or sqlite:////absolute/path")
        path = os.path.expanduser(rest[1:])
        return LedgerLocation("sqlite", path, path)
    raise ConfigurationError(
        f"unsupported ledger URL scheme {scheme!r}: use a file path, sqlite:///path or postgresql://…"
    )


def _postgres_display(url: str) -> str:
    """The URL without password or query: user, host, port and database only."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigurationError("the PostgreSQL ledger URL is malformed (check the host and port)") from None
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    user = f"{parts.username}@" if parts.username else ""
    return f"postgresql://{user}{host}{'' if port is None else f':{port}'}{parts.path}"
