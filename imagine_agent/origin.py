"""Where a payment goes: the origin of a URL, and whether a server's claim to be the sandbox is believable.

A sandbox's money is not real money (money-safety rule 8), so its payments count against separate
sandbox windows. The claim is a response header any server could send, so it is believed only from a
loopback host: a remote server can never move real payments out of the real windows by claiming it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

__all__ = ["SANDBOX_HEADER", "claims_sandbox", "is_loopback", "origin_of"]

SANDBOX_HEADER = "X-Imagine-Sandbox"  # the sandbox sends "1" on every answer


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased; '' when it has none. Never the path or query."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    if not parts.scheme or not parts.hostname:
        return ""
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}{'' if port is None else f':{port}'}"


def is_loopback(url: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1) only."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def claims_sandbox(headers: Mapping[str, str], url: str) -> bool:
    """The server at ``url`` says it is the sandbox, and it is on loopback, where the claim is believable."""
    return headers.get(SANDBOX_HEADER, "").strip() == "1" and is_loopback(url)
