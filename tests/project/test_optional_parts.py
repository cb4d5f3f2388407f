"""Optional parts skip on a developer's machine and fail under CI=true: none is ever skipped there silently."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import hypothesis_profiles, optional

TESTS = Path(__file__).resolve().parents[1]


def _outcome(call: Callable[[], object]) -> str:
    try:
        call()
    except pytest.skip.Exception:
        return "skip"
    except pytest.fail.Exception:
        return "fail"
    return "ran"


def test_elizaos_skips_locally_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _outcome(lambda: optional.require_elizaos(optional.ELIZAOS_VERSION, {"CI": "true"})) == "ran"
    assert _outcome(lambda: optional.require_elizaos("0.0.0", {"CI": "true"})) == "fail"  # another release
    assert _outcome(lambda: optional.require_elizaos("0.0.0", {})) == "skip"
    monkeypatch.setitem(__import__("sys").modules, "elizaos", None)  # as if it were not installed
    assert _outcome(lambda: optional.require_elizaos(environ={})) == "skip"
    assert _outcome(lambda: optional.require_elizaos(environ={"CI": "false"})) == "skip"
    assert _outcome(lambda: optional.require_elizaos(environ={"CI": "true"})) == "fail"
    assert _outcome(lambda: optional.require_elizaos(environ={"CI": "1"})) == "fail"


def test_no_test_skips_a_missing_package_silently() -> None:
    """``pytest.importorskip`` skips under CI too: use ``tests.optional`` (or a fixture that fails under CI)."""
    found = [
        f"{path.relative_to(TESTS)}:{n}"
        for path in sorted(TESTS.rglob("*.py"))
        if path.name != "optional.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"importorskip\(", line) and "re.search" not in line
    ]
    assert found == []


def test_the_hypothesis_profile_is_derandomized_unless_dev_is_asked_for() -> None:
    from hypothesis import settings

    assert hypothesis_profiles.selected({}) == "ci"
    assert hypothesis_profiles.selected({"CI": "true"}) == "ci"
    assert hypothesis_profiles.selected({"HYPOTHESIS_PROFILE": "dev"}) == "dev"
    with pytest.raises(ValueError, match="expected 'ci' or 'dev'"):
        hypothesis_profiles.selected({"HYPOTHESIS_PROFILE": "fast"})
    ci, dev = settings.get_profile("ci"), settings.get_profile("dev")
    assert ci.derandomize and ci.database is None
    assert not dev.derandomize and dev.max_examples >= 10 * ci.max_examples
    if hypothesis_profiles.selected() == "ci":  # this very run: loaded by tests/conftest.py
        assert settings.default.derandomize and hypothesis_profiles.examples(150) == 150
