"""Optional parts of the test bed (elizaos, ...): skipped on a developer's machine, required under CI=true.

``pytest.importorskip`` skips silently wherever a package is missing, CI included; these helpers fail there
instead, as ``tests/pg.py`` does for PostgreSQL and the chain, browser and npm fixtures do for theirs.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType
from typing import NoReturn

import pytest

__all__ = ["ELIZAOS_VERSION", "in_ci", "require_elizaos", "unavailable"]

ELIZAOS_VERSION = "2.0.0a5"  # the elizaos adapter is verified against this release (pyproject's extra pins it)


def in_ci(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(message: str, environ: Mapping[str, str] = os.environ) -> NoReturn:
    """Skip (usable at module level), or under CI fail: CI must never silently skip a part."""
    if in_ci(environ):
        pytest.fail(f"{message}; CI must not skip it", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def require_elizaos(exact_version: str | None = None, environ: Mapping[str, str] = os.environ) -> ModuleType:
    """The real ``elizaos`` package (at ``exact_version`` when given), else a skip, or under CI a failure."""
    hint = "pip install -e '.[elizaos]'"
    try:
        module = importlib.import_module("elizaos")
        found = version("elizaos")
    except (ImportError, PackageNotFoundError):
        unavailable(f"elizaos is not installed ({hint})", environ)
    if exact_version is not None and found != exact_version:
        unavailable(f"the adapter is verified against elizaos {exact_version}, not {found} ({hint})", environ)
    return module
