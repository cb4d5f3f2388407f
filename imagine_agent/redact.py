"""Show a URL without what makes it a credential (money-safety rule 4).

A PostgreSQL URL keeps user, host, port and database (never the password or query); any other URL,
such as an RPC endpoint whose API key often sits in the path or query, keeps scheme and host only.
Used by every repr and error message that names a ledger or RPC URL.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["inert", "redact_text", "redact_url"]


def _host(hostname: str | None, port: int | None) -> str:
    host = hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    return host if port is None else f"{host}:{port}"


def redact_url(url: str | None) -> str | None:
    """The URL as it may be shown; something unparsable becomes a placeholder, never itself."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<malformed URL>"
    scheme = parts.scheme.lower()
    if not scheme or not parts.netloc:
        return url if "://" not in url and "@" not in url else "<malformed URL>"  # a plain file path
    if scheme in ("postgresql", "postgres"):
        user = f"{parts.username}@" if parts.username else ""
        return f"postgresql://{user}{_host(parts.hostname, port)}{parts.path}"
    return f"{scheme}://{_host(parts.hostname, port)}"


def redact_text(text: str, *urls: str | None) -> str:
    """``text`` with every one of ``urls`` (if present) replaced by its redacted form."""
    for url in urls:
        if url:
            shown = redact_url(url) or ""
            text = text.replace(url, shown)
    return text


def inert(text: str, limit: int = 300) -> str:
    """Text safe to show a person who approves a payment: control characters (``\\r``, ANSI escapes,
    bidi overrides) escaped as ``\\x1b``-style sequences, so server or prompt text cannot redraw the line."""
    out = []
    for char in text[:limit]:
        if char.isprintable() or char == " ":
            out.append(char)
        else:
            out.append(repr(char)[1:-1] if ord(char) < 0x10000 else f"\\U{ord(char):08x}")
    return "".join(out) + ("…" if len(text) > limit else "")
