"""Where a download really goes: resolve the host once, check every address, connect to a checked one.

A host name proves nothing: an attacker's domain may have an A record of 127.0.0.1, 10.x or
169.254.169.254 (the cloud metadata service), and a name resolved twice may answer differently the
second time (DNS rebinding). So a download resolves the name here, refuses it when any address is not a
public one, and then connects to that very address, sending the original name as ``Host`` and as the TLS
server name (``sni_hostname``, which is also the name the certificate is checked against).
"""

from __future__ import annotations

import ipaddress
import socket

import httpx

from .errors import DownloadError

__all__ = ["is_public_address", "pinned", "resolve_public"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public_address(ip: IPAddress) -> bool:
    """Whether ``ip`` is a global unicast address: not loopback, private, link-local (the metadata
    service), shared (CGNAT), reserved, unspecified or multicast; an IPv4-mapped IPv6 address as its IPv4."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve_public(url: httpx.URL, kind: str) -> list[str]:
    """The addresses ``url``'s host resolves to (one lookup), all public, or ``DownloadError``."""
    host = url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise DownloadError(f"{kind} download refused: host {host!r} does not resolve ({exc})") from None
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in found:
        text = str(sockaddr[0]).split("%", 1)[0]  # an IPv6 scope id is no part of the address
        ip = ipaddress.ip_address(text)
        if not is_public_address(ip):
            raise DownloadError(
                f"{kind} download refused: host {host!r} resolves to {ip}, a local, private, link-local or "
                "metadata address (set IMAGINE_ALLOW_PRIVATE_DOWNLOADS to allow it)"
            )
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise DownloadError(f"{kind} download refused: host {host!r} resolves to no address")
    addresses.sort(key=lambda a: ":" in a)  # IPv4 first, as most file hosts listen there
    return addresses


def pinned(
    client: httpx.Client | httpx.AsyncClient, url: httpx.URL, address: str, headers: dict[str, str]
) -> httpx.Request:
    """A GET of ``url`` sent to ``address``: the URL names the address, ``Host`` and TLS name the host."""
    host_header = url.netloc.decode("ascii")
    request = client.build_request("GET", url.copy_with(host=address), headers={**headers, "host": host_header})
    if url.scheme == "https":
        request.extensions["sni_hostname"] = url.host
    return request
