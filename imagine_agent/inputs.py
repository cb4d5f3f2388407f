"""Checks of what a caller hands in before anything is sent: task ids (they go into URL paths), image
URLs and data URLs, hosts the video server could not reach (loopback, private, link-local; no DNS
lookup), and local image files (sniffed by their first bytes).

Where a download really connects (DNS resolved once, every address checked) is ``addresses.py``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .errors import InvalidRequestError

__all__ = [
    "IMAGE_MIME_TYPES",
    "MAX_IMAGE_BYTES",
    "ImageFile",
    "check_image_host",
    "is_private_host",
    "sniff_image_type",
    "validate_task_id",
]

MAX_IMAGE_BYTES = 10 * 1024 * 1024
IMAGE_MIME_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
_TASK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$")


def validate_task_id(task_id: str) -> str:
    """Task ids go into URL paths: allow only the characters an id can have."""
    if not isinstance(task_id, str) or not _TASK_ID.match(task_id):
        raise InvalidRequestError(
            f"invalid task id {task_id!r}: expected the id returned by create (letters, digits, '-', '_')"
        )
    return task_id


def _validate_image(value: str) -> str:
    if value.startswith("data:"):
        header, sep, data = value.partition(",")
        if not sep or not header.endswith(";base64"):
            raise ValueError("a data URL image must look like data:image/png;base64,<data>")
        mime = header[5:-7].lower()
        if mime not in IMAGE_MIME_TYPES:
            raise ValueError(f"data URL mime type {mime!r} is not an image type ({', '.join(IMAGE_MIME_TYPES)})")
        if len(data) > MAX_IMAGE_BYTES * 4 // 3 + 4:
            raise ValueError(f"image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MiB")
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("data URL image is not valid base64") from None
        if not raw:
            raise ValueError("data URL image is empty")
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("image must be an http(s):// URL, a data:image/...;base64 URL, or a local file path")
    if len(value) > 4096:
        raise ValueError("image URL is longer than 4096 characters")
    return value


def _host_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names, including the legacy IPv4 forms resolvers still accept (127.1,
    2130706433, 0x7f.0.0.1, 0177.0.0.1), which ``ipaddress`` refuses to parse."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def is_private_host(host: str) -> bool:
    """A loopback, private, link-local or local-only name or address (no DNS lookup)."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    ip = _host_ip(host.strip("[]"))
    return ip is not None and (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_unspecified
    )


def check_image_host(image: str, *, allow_private: bool) -> None:
    """Refuse image URLs the remote server cannot fetch (loopback, private, link-local), unless allowed."""
    if allow_private or image.startswith("data:"):
        return
    host = (urlsplit(image).hostname or "").lower().rstrip(".")
    if is_private_host(host):
        raise InvalidRequestError(
            f"image URL host {host!r} is a local or private address the video server cannot reach; "
            "use a public URL, a data URL or a local file path (or allow private image URLs in the config)"
        )


_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}


def sniff_image_type(content: bytes) -> str | None:
    """The image mime type from the first bytes, or None when it is not an image we accept."""
    for magic, mime in _MAGIC.items():
        if content.startswith(magic):
            return mime
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return None


@dataclass(frozen=True)
class ImageFile:
    """A local image for image-to-video, sent as a multipart upload."""

    filename: str
    content: bytes
    mime: str

    @classmethod
    def from_path(cls, path: str | Path) -> ImageFile:
        p = Path(path).expanduser()
        if not p.is_file():
            raise InvalidRequestError(f"image file {str(p)!r} does not exist")
        size = p.stat().st_size
        if size == 0 or size > MAX_IMAGE_BYTES:
            limit = MAX_IMAGE_BYTES // 2**20
            raise InvalidRequestError(f"image file must be 1 byte to {limit} MiB; it is {size} bytes")
        content = p.read_bytes()
        mime = sniff_image_type(content)
        if mime is None:
            raise InvalidRequestError(f"{p.name} is not a PNG, JPEG, WebP or GIF image")
        return cls(p.name, content, mime)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def __repr__(self) -> str:
        return f"ImageFile({self.filename!r}, {len(self.content)} bytes, {self.mime})"
