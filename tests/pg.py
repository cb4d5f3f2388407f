"""A real PostgreSQL for the tests: a fresh database per test, on the server IMAGINE_TEST_POSTGRES_URL names.

`eval "$(bash .ci/postgres.sh)"` starts a throwaway server and sets that variable (`.ci/run` does). Without
it, PostgreSQL tests skip, except under CI=true, where they fail: CI must never silently skip them.

Use from a conftest (``pytest_plugins = ["tests.pg"]`` in the top-level one, or import the fixtures)::

    def test_something(postgres_url: str) -> None:  # a new, empty database, dropped afterwards
        ...
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest

__all__ = ["ENV", "postgres_server", "postgres_url", "server_url", "temporary_database"]

ENV = "IMAGINE_TEST_POSTGRES_URL"


def server_url(environ: Mapping[str, str] = os.environ) -> str:
    """The server to create test databases on; skips (or, under CI, fails) when there is none."""
    url = environ.get(ENV, "").strip()
    if url:
        return url
    message = f"PostgreSQL not available: set {ENV} (.ci/run does)"
    if environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message}; CI must not skip the PostgreSQL tests", pytrace=False)
    pytest.skip(message)


def _with_database(url: str, dbname: str) -> str:
    return urlsplit(url)._replace(path="/" + dbname).geturl()


@contextmanager
def temporary_database(url: str, prefix: str = "imagine_test") -> Iterator[str]:
    """Create a uniquely named database on the server at ``url``, yield its URL, drop it afterwards."""
    import psycopg

    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,30}", prefix):
        raise ValueError(f"bad database name prefix {prefix!r}")
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield _with_database(url, name)
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of the test server (its own database is not touched; tests get their own)."""
    return server_url()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A new, empty database for one test (about 20 ms to create), dropped when the test ends."""
    with temporary_database(postgres_server) as url:
        yield url
