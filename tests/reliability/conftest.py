"""Reliability suite fixtures. Sizes come from IMAGINE_RELIABILITY_PROFILE=short|long (default short)."""

from __future__ import annotations

import pytest

from .profile import Profile, current


@pytest.fixture(scope="session")
def profile() -> Profile:
    return current()
