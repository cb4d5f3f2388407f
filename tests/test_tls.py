"""One TLS context per process (``imagine_agent.tls``): built once, shared by every client, and still verifying."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from imagine_agent.chain import UsdcChain
from imagine_agent.client import AsyncImagineClient, ImagineClient
from imagine_agent.tls import tls_context


@pytest.fixture
def fresh_context() -> Iterator[None]:
    tls_context.cache_clear()
    yield
    tls_context.cache_clear()


def test_every_client_shares_one_context(fresh_context: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx builds a context per client by default (the CA bundle parsed each time); ours is built once."""
    built: list[object] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    with ImagineClient("https://api.example"), ImagineClient("https://other.example"):
        pass
    client = AsyncImagineClient("https://api.example")
    asyncio.run(client.aclose())
    UsdcChain("https://rpc.example").close()
    assert len(built) == 1


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTPS server with a self-signed certificate for 127.0.0.1; yields its URL and the cert."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    where = ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(["openssl", *request, *where], check=True, capture_output=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/", cert
    server.shutdown()
    server.server_close()


def test_the_shared_context_verifies_certificates(
    fresh_context: None, https_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert = https_server
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trusted on purpose: the request goes through
    with ImagineClient(url) as client:
        assert client.http.get(url).text == "hello"
    tls_context.cache_clear()
    monkeypatch.delenv("SSL_CERT_FILE")  # certifi's bundle: a self-signed certificate is refused
    with ImagineClient(url) as client, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        client.http.get(url)
