"""Hypothesis profiles: CI is a function of the code; developers search at random, on purpose.

- ``ci`` (under ``CI=true``, and whenever no profile is named): ``derandomize=True`` and no example database, so the same
  code draws the same examples on every run and machine. What hypothesis once found is pinned with
  ``@example`` next to its property, never left to chance.
- ``dev`` (``HYPOTHESIS_PROFILE=dev``): random, ten times the examples, with the local database so a
  failure found is replayed until fixed. Whatever it finds becomes an ``@example``.

Explicit ``max_examples`` in a test are CI sizes: write them as ``examples(n)`` so ``dev`` scales them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from hypothesis import settings

__all__ = ["CI", "DEV", "ENV", "examples", "load", "selected"]

ENV = "HYPOTHESIS_PROFILE"
CI = "ci"
DEV = "dev"
DEV_FACTOR = 10

settings.register_profile(CI, derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile(DEV, max_examples=100 * DEV_FACTOR, derandomize=False, deadline=None, print_blob=True)


def selected(environ: Mapping[str, str] = os.environ) -> str:
    """``HYPOTHESIS_PROFILE`` when set (``ci`` or ``dev``), else ``ci`` (so under ``CI=true`` too): a run
    is random only on purpose; a nightly job may name ``dev`` to search at random."""
    name = environ.get(ENV, "").strip() or CI
    if name not in (CI, DEV):
        raise ValueError(f"{ENV}={name!r}: expected {CI!r} or {DEV!r}")
    return name


def load(environ: Mapping[str, str] = os.environ) -> str:
    name = selected(environ)
    settings.load_profile(name)
    return name


def examples(ci_size: int) -> int:
    """``ci_size`` examples under ``ci``; ten times as many under ``dev``."""
    return ci_size * DEV_FACTOR if selected() == DEV else ci_size
