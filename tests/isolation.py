"""The test run's environment: no operator setting (``IMAGINE_*``) from the developer's shell reaches a test.

``tests/conftest.py`` applies :func:`isolate` to every test (autouse); :func:`clean_environ` is the same rule for
code that also runs outside pytest (``benchmarks.reliability`` drives ``tests/reliability/fuzz.py``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

__all__ = ["KEPT", "clean_environ", "is_operator_setting", "isolate"]

# Knobs of the test run itself, not operator settings: where the test PostgreSQL is (IMAGINE_TEST_*), how big
# the reliability runs are, where the devnet's npm packages were installed (a cache, like XDG_CACHE_HOME).
KEPT = frozenset({"IMAGINE_RELIABILITY_PROFILE", "IMAGINE_DEVNET_DIR"})


def is_operator_setting(name: str) -> bool:
    """An ``IMAGINE_*`` variable the code under test would read as a setting."""
    return name.startswith("IMAGINE_") and not name.startswith("IMAGINE_TEST_") and name not in KEPT


def clean_environ(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """A copy of ``environ`` without operator settings."""
    return {k: v for k, v in environ.items() if not is_operator_setting(k)}


def isolate(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Drop every operator setting; point the data dir and the XDG data/config/state dirs into ``home``.

    ``HOME`` and ``XDG_CACHE_HOME`` stay: npm, node and the devnet install keep their caches there.
    """
    for name in list(os.environ):
        if is_operator_setting(name):
            monkeypatch.delenv(name)
    monkeypatch.setenv("IMAGINE_DATA_DIR", str(home / "imagine-data"))
    for xdg in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(xdg, str(home / xdg.lower()))
