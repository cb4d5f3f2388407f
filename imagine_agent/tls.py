"""One TLS context for every HTTP client this process makes.

httpx builds a fresh ``SSLContext`` for each client it creates with ``verify=True``, and building one parses the
whole CA bundle: 50-70 ms of CPU here, paid by every service, CLI command, chain reader and sandbox probe. A
context is safe to share between clients, threads and event loops, so the clients here share this one.
"""

from __future__ import annotations

import functools
import ssl

import httpx

__all__ = ["tls_context"]


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default trust, built once: ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` when set, else certifi's bundle
    (read on first use; a process that changes those variables later keeps the first answer)."""
    return httpx.create_ssl_context()
