"""The client decodes API answers itself, capping the *decompressed* size (rule 1: bombs are unknown)."""

from __future__ import annotations

import gzip
import zlib

import httpx
import pytest

from imagine_agent.client import MAX_API_BODY, _Body

DATA = b'{"taskId": "123e4567-e89b-12d3-a456-426614174000"}'


def decode(encoding: str, raw: bytes, cap: int = MAX_API_BODY, chunk: int = 7) -> httpx.Response:
    body = _Body(encoding, cap)
    for i in range(0, len(raw), chunk):
        body.feed(raw[i : i + chunk])
    return body.response(
        httpx.Response(
            202,
            headers={"content-encoding": encoding, "content-length": "9"},
            request=httpx.Request("POST", "http://api.test/generation/create"),
        )
    )


@pytest.mark.parametrize(
    ("encoding", "raw"),
    [
        ("", DATA),
        ("identity", DATA),
        ("gzip", gzip.compress(DATA, mtime=0)),
        ("x-gzip", gzip.compress(DATA, mtime=0)),
        ("deflate", zlib.compress(DATA)),
        ("deflate", zlib.compress(DATA)[2:-4]),  # zlib-wrapped and raw deflate
    ],
)
def test_supported_encodings_decode(encoding: str, raw: bytes) -> None:
    resp = decode(encoding, raw)
    assert resp.content == DATA and "content-encoding" not in resp.headers and not resp.extensions


@pytest.mark.parametrize(
    ("encoding", "raw", "why"),
    [
        ("br", DATA, "unsupported"),
        ("zstd", DATA, "unsupported"),
        ("gzip, gzip", DATA, "unsupported"),
        ("gzip", b"\x1f\x8b" + b"garbage" * 5, "corrupt"),
        ("gzip", gzip.compress(DATA, mtime=0)[:15], "truncated"),
        ("gzip", gzip.compress(b"\0" * (MAX_API_BODY * 40), mtime=0), "decompressed"),
        ("", b" " * (MAX_API_BODY + 1), "decompressed"),
    ],
)
def test_undecodable_or_oversized_bodies_are_reported_not_raised(encoding: str, raw: bytes, why: str) -> None:
    resp = decode(encoding, raw, chunk=65536)
    assert resp.content == b"" and why in resp.extensions["imagine.body_error"]


def test_a_bomb_never_inflates_much_past_the_cap() -> None:
    body = _Body("gzip", 1000)
    bomb = gzip.compress(b"\0" * 50_000_000)
    body.feed(bomb)  # one chunk holding the whole bomb: the output is still bounded by the cap
    assert body.error is not None and len(body.data) <= 1001
