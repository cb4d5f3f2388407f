"""Downloads check the address they connect to, not the host's text (issue 22 (c), money-safety rule 9).

A real loopback file server stands in for an attacker's host. The names are real: the machine's own host
name (which resolves to loopback here), and names answered by ``socket.getaddrinfo`` itself, the one layer
below the client that is replaced — the client, httpx and httpcore run unchanged above it.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from imagine_agent.client import AsyncImagineClient, ImagineClient
from imagine_agent.errors import DownloadError
from imagine_agent.models import TaskStatus

pytestmark = pytest.mark.e2e

MP4 = b"\0\0\0\x18ftypmp42" + b"\0" * 4000
API = "https://api.imagine.example"  # never contacted: a public API, so private downloads are not allowed


class FileHost:
    """A loopback HTTP server: ``/v.mp4`` is a video, ``/to?url=...`` redirects there. Records Host headers."""

    def __init__(self) -> None:
        hosts = self.hosts = list[str]()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hosts.append(self.headers.get("host", ""))
                if self.path.startswith("/to?url="):
                    self.send_response(302)
                    self.send_header("location", self.path.removeprefix("/to?url="))
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("content-type", "video/mp4")
                self.send_header("content-length", str(len(MP4)))
                self.end_headers()
                self.wfile.write(MP4)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def host() -> Iterator[FileHost]:
    server = FileHost()
    yield server
    server.close()


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Answers for names (and address literals) given here; everything else resolves as usual.

    Each entry is a list of answers, one per lookup (the last repeats): a name can change its answer
    between two lookups, as a rebinding attacker's does. ``lookups`` counts the lookups of each name.
    """
    answers: dict[str, list[str]] = {}
    lookups: dict[str, int] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in answers:
            return real(host, port, *args, **kwargs)
        count = lookups[name] = lookups.get(name, 0) + 1
        address = answers[name][min(count, len(answers[name])) - 1]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sockaddr = (address, int(port or 0), 0, 0) if family == socket.AF_INET6 else (address, int(port or 0))
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    # The event loop connects to an address literal without a lookup: route it the same way one layer down.
    sock_connect = asyncio.selector_events.BaseSelectorEventLoop.sock_connect

    async def routed(loop: Any, sock: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address[0] in answers:
            address = (answers[address[0]][-1], *address[1:])
        await sock_connect(loop, sock, address)

    monkeypatch.setattr(asyncio.selector_events.BaseSelectorEventLoop, "sock_connect", routed)
    answers["__lookups__"] = lookups  # type: ignore[assignment]
    return answers


def download(flavour: str, url: str, directory: Path, **options: Any) -> Path:
    status = TaskStatus.model_validate({"status": "completed", "result": {"generation": {"video": {"url": url}}}})
    if flavour == "sync":
        with ImagineClient(API, **options) as client:
            return client.download(status, directory, include_preview=False).video

    async def run() -> Path:
        async with AsyncImagineClient(API, **options) as client:
            return (await client.download(status, directory, include_preview=False)).video

    return asyncio.run(run())


FLAVOURS = pytest.mark.parametrize("flavour", ["sync", "async"])


def own_name() -> str:
    """The machine's host name, when it resolves to a loopback address (it does on most machines)."""
    name = socket.gethostname()
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    except OSError:
        pytest.skip("this machine's host name does not resolve")
    if not all(a.startswith("127.") or a == "::1" for a in addresses):
        pytest.skip(f"this machine's host name resolves to {addresses}, not loopback")
    return name


@FLAVOURS
def test_own_host_name_resolving_to_loopback_is_refused(flavour: str, host: FileHost, tmp_path: Path) -> None:
    url = f"http://{own_name()}:{host.port}/v.mp4"
    with pytest.raises(DownloadError, match="resolves to 127"):
        download(flavour, url, tmp_path)
    assert host.hosts == [] and list(tmp_path.iterdir()) == []


@FLAVOURS
@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "169.254.169.254", "100.64.0.9", "::1", "::ffff:127.0.0.1", "fd00:ec2::254", "0.0.0.0"],
)
def test_a_name_with_a_private_or_metadata_address_is_refused(
    flavour: str, address: str, host: FileHost, resolver: dict[str, list[str]], tmp_path: Path
) -> None:
    resolver["videos.attacker.example"] = [address]
    with pytest.raises(DownloadError, match="local, private, link-local or metadata"):
        download(flavour, f"http://videos.attacker.example:{host.port}/v.mp4", tmp_path)
    assert host.hosts == [] and list(tmp_path.iterdir()) == []


@FLAVOURS
def test_the_checked_address_is_the_one_connected_to(
    flavour: str, host: FileHost, resolver: dict[str, list[str]], tmp_path: Path
) -> None:
    """One lookup per hop: the name turns to 127.0.0.1 on a second lookup (rebinding), which never happens.

    The public address 93.184.216.34 is routed to the loopback file host below the client (the lookup
    ``socket.create_connection`` makes; the event loop's connect), so nothing leaves the machine.
    """
    resolver["cdn.videos.example"] = ["93.184.216.34", "127.0.0.1"]
    resolver["93.184.216.34"] = ["127.0.0.1"]
    path = download(flavour, f"http://cdn.videos.example:{host.port}/v.mp4", tmp_path)
    assert path.read_bytes() == MP4
    lookups: dict[str, int] = resolver["__lookups__"]  # type: ignore[assignment]
    assert lookups["cdn.videos.example"] == 1
    assert host.hosts == [f"cdn.videos.example:{host.port}"]


@FLAVOURS
def test_every_redirect_hop_is_resolved_and_checked(
    flavour: str, host: FileHost, resolver: dict[str, list[str]], tmp_path: Path
) -> None:
    resolver["cdn.videos.example"] = ["93.184.216.34"]
    resolver["93.184.216.34"] = ["127.0.0.1"]
    resolver["rebound.videos.example"] = ["127.0.0.1"]
    target = f"http://rebound.videos.example:{host.port}/v.mp4"
    with pytest.raises(DownloadError, match=r"resolves to 127\.0\.0\.1"):
        download(flavour, f"http://cdn.videos.example:{host.port}/to?url={target}", tmp_path)
    assert host.hosts == [f"cdn.videos.example:{host.port}"]  # the first hop only
    assert list(tmp_path.iterdir()) == []


@FLAVOURS
def test_private_downloads_allowed_by_the_operator_still_work(flavour: str, host: FileHost, tmp_path: Path) -> None:
    url = f"http://{own_name()}:{host.port}/v.mp4"
    assert download(flavour, url, tmp_path, allow_private_downloads=True).read_bytes() == MP4
