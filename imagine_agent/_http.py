"""HTTP plumbing shared by both clients: API answers read with a cap on their decompressed size,
download hops checked (scheme, private hosts, redirects) and downloads written atomically.

No client state here: the clients in ``client.py`` pass what they know.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zlib
from pathlib import Path
from typing import Any

import httpx

from .addresses import pinned
from .errors import DownloadError
from .flows import BODY_ERROR, Fetch, TransientDownloadError
from .inputs import is_private_host

MAX_API_BODY = 1024 * 1024
DEFAULT_MAX_DOWNLOAD = 512 * 1024 * 1024
VIDEO_TYPES = ("video/", "application/octet-stream", "binary/octet-stream")
IMAGE_TYPES = ("image/", "application/octet-stream", "binary/octet-stream")
USER_AGENT = "imagine-agent/0.1"
ACCEPT_ENCODING = "gzip, deflate"  # what _Body can decode with a cap on the *decompressed* bytes
MAX_REDIRECTS = 5


def _check_hop(url: httpx.URL, fetch: Fetch, allow_private: bool) -> None:
    """Every host a download touches: http(s) only, and not private unless allowed (like image URLs)."""
    if url.scheme not in ("http", "https"):
        raise DownloadError(f"{fetch.kind} download refused: {url.scheme!r} is not http(s)")
    if not allow_private and is_private_host(url.host):
        raise DownloadError(
            f"{fetch.kind} download refused: host {url.host!r} is a local or private address "
            "(set IMAGINE_ALLOW_PRIVATE_DOWNLOADS to allow it)"
        )


def _hop_requests(
    url: httpx.URL, addresses: list[str] | None, http: httpx.Client | httpx.AsyncClient
) -> list[httpx.Request]:
    """The requests to try for one hop: one per checked address, or the URL itself when not resolved here."""
    headers = {"user-agent": USER_AGENT}
    if addresses is None:
        return [http.build_request("GET", url, headers=headers)]
    return [pinned(http, url, address, headers) for address in addresses]


def _next_hop(url: httpx.URL, resp: httpx.Response) -> httpx.URL | None:
    """Where a redirect points, relative to the URL as named (not the address it was sent to)."""
    location = resp.headers.get("location")
    if not resp.is_redirect or not location:
        return None
    try:
        return url.join(location)
    except httpx.InvalidURL as exc:
        raise DownloadError(f"download redirected to an invalid URL ({exc})") from None


def _carries_payment(request: httpx.Request) -> bool:
    return "x-payment" in request.headers or "payment-signature" in request.headers


class _Body:
    """Read an API answer with a cap on its *decompressed* size (gzip/zstd bombs), decoding it ourselves.

    Errors do not raise: after a payment an unreadable answer is an outcome (``unknown``), so the reason
    travels in ``Response.extensions[BODY_ERROR]`` and the flow decides.
    """

    def __init__(self, encoding: str, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.raw = 0
        self.error: str | None = None
        codings = [c.strip().lower() for c in encoding.split(",") if c.strip() and c.strip().lower() != "identity"]
        self._inflate: Any = None
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            self.error = f"unsupported Content-Encoding {encoding[:40]!r}"
        elif codings:
            self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 32 if codings[0] != "deflate" else zlib.MAX_WBITS)
        self._raw_deflate_allowed = bool(codings) and codings[0] == "deflate"

    @classmethod
    def of_read(cls, resp: httpx.Response, cap: int) -> httpx.Response:
        body = cls("", cap)
        body.feed(resp.content)
        return body.response(resp)

    def feed(self, chunk: bytes) -> None:
        if self.error is not None:
            return
        self.raw += len(chunk)
        if self._inflate is None:
            out = chunk
        else:
            try:
                out = self._inflate.decompress(chunk, self.cap + 1 - len(self.data))
            except zlib.error:
                if not (self._raw_deflate_allowed and self.raw == len(chunk)):
                    self.error = "the compressed body is corrupt"
                    return
                self._raw_deflate_allowed = False  # "deflate" sent without its zlib wrapper, as some servers do
                self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
                self.raw = 0
                self.feed(chunk)
                return
            if self._inflate.unconsumed_tail:  # the output was capped: it inflates to more than the cap
                self.error = f"more than {self.cap} bytes (decompressed)"
                return
        self.data += out
        if len(self.data) > self.cap or self.raw > self.cap:
            self.error = f"more than {self.cap} bytes (decompressed)"

    def response(self, resp: httpx.Response) -> httpx.Response:
        if self.error is None and self._inflate is not None and not self._inflate.eof:
            self.error = "the compressed body is truncated"
        headers = [
            (k, v) for k, v in resp.headers.multi_items() if k.lower() not in ("content-encoding", "content-length")
        ]
        if self.error is not None:
            return httpx.Response(
                resp.status_code,
                headers=headers,
                content=b"",
                request=resp.request,
                extensions={BODY_ERROR: self.error},
            )
        return httpx.Response(resp.status_code, headers=headers, content=bytes(self.data), request=resp.request)


def _too_slow(request: httpx.Request) -> httpx.ReadTimeout:
    return httpx.ReadTimeout("the total deadline of the request passed", request=request)


def _safe_stem(name: str) -> str:
    return "".join(c for c in name if c.isalnum() or c in "-_")[:80] or "video"


def _check_download(resp: httpx.Response, fetch: Fetch) -> None:
    if resp.status_code >= 500:
        raise TransientDownloadError(f"{fetch.kind} download answered HTTP {resp.status_code}: {fetch.url}")
    if resp.status_code != 200:
        raise DownloadError(f"{fetch.kind} download answered HTTP {resp.status_code}: {fetch.url}")
    ctype = resp.headers.get("content-type", "").lower()
    allowed = VIDEO_TYPES if fetch.kind == "video" else IMAGE_TYPES
    if ctype and not ctype.startswith(allowed):
        raise DownloadError(f"{fetch.kind} download is {ctype!r}, not a {fetch.kind}: {fetch.url}")
    declared = resp.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > fetch.max_bytes:
        raise DownloadError(
            f"{fetch.kind} is {int(declared)} bytes, over the {fetch.max_bytes}-byte limit (IMAGINE_MAX_DOWNLOAD_MB)"
        )


class _Writer:
    """Write a download to a temporary file of its own and rename it into place only when complete and
    within limits. Concurrent downloads of one task never share a temporary file, and the rename is
    atomic, so each of them ends with the whole file in place. A file-system error is a ``DownloadError``
    that names the file."""

    def __init__(self, fetch: Fetch) -> None:
        self.fetch = fetch
        self.size = 0
        try:
            fetch.path.parent.mkdir(parents=True, exist_ok=True)
            fd, part = tempfile.mkstemp(prefix=f".{fetch.path.name}.", suffix=".part", dir=fetch.path.parent)
        except OSError as exc:
            raise self._error("cannot create", exc) from None
        self.part = Path(part)
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o644)  # as an ordinary new file would be, not mkstemp's 0600
        self.file = os.fdopen(fd, "wb")

    def _error(self, what: str, exc: OSError) -> DownloadError:
        reason = exc.strerror or type(exc).__name__
        return DownloadError(
            f"{what} the {self.fetch.kind} file {self.fetch.path}: {reason}; check the output "
            "directory (free space, permissions) and download again (nothing is paid again)"
        )

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.fetch.max_bytes:
            raise DownloadError(f"{self.fetch.kind} passed the {self.fetch.max_bytes}-byte limit; download stopped")
        try:
            self.file.write(chunk)
        except OSError as exc:
            raise self._error("cannot write", exc) from None

    def finish(self) -> Path:
        try:
            self.file.close()
        except OSError as exc:
            raise self._error("cannot write", exc) from None
        if self.size == 0:
            raise DownloadError(f"{self.fetch.kind} download was empty: {self.fetch.url}")
        try:
            os.replace(self.part, self.fetch.path)
        except OSError as exc:
            raise self._error("cannot save", exc) from None
        return self.fetch.path

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(OSError):
            self.part.unlink()
