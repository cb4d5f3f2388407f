"""The test run's own rules: an isolated environment for every test, and the slow profile set by folder."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from imagine_agent.config import Settings, default_data_dir
from tests import conftest
from tests.isolation import clean_environ, is_operator_setting


def test_no_operator_setting_from_the_shell_reaches_a_test() -> None:
    assert [name for name in os.environ if is_operator_setting(name)] == ["IMAGINE_DATA_DIR"]
    assert "IMAGINE_MAX_PER_CALL" not in os.environ and "IMAGINE_PRIVATE_KEY" not in os.environ


def test_the_data_dirs_are_temporary(tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.getbasetemp()
    assert Settings().data_dir.is_relative_to(base)
    assert default_data_dir().is_relative_to(base)  # what a child with no IMAGINE_DATA_DIR would use


def test_test_run_knobs_are_kept_and_settings_dropped() -> None:
    environ = {
        "IMAGINE_TEST_POSTGRES_URL": "postgresql://x",
        "IMAGINE_RELIABILITY_PROFILE": "long",
        "IMAGINE_BASE_URL": "http://api",
        "IMAGINE_KEYSTORE_PASSWORD": "pw",
        "PATH": "/bin",
    }
    assert clean_environ(environ) == {
        "IMAGINE_TEST_POSTGRES_URL": "postgresql://x",
        "IMAGINE_RELIABILITY_PROFILE": "long",
        "PATH": "/bin",
    }


class _Item(SimpleNamespace):
    def add_marker(self, mark: Any) -> None:
        self.marks.append(mark.mark if hasattr(mark, "mark") else mark)


def _marks(relative: str, *fixtures: str) -> dict[str, tuple[Any, ...]]:
    item = _Item(path=Path(conftest.__file__).parent / relative, fixturenames=list(fixtures), marks=[])
    config = SimpleNamespace(pluginmanager=SimpleNamespace(hasplugin=lambda name: name == "xdist"))
    conftest.pytest_collection_modifyitems(config, [item])  # type: ignore[arg-type]
    return {mark.name: mark.args for mark in item.marks}


def test_slow_is_set_by_folder_and_file_and_costly_fixtures_share_a_worker() -> None:
    assert _marks("chain/test_settlement.py", "devnet_session") == {"slow": (), "xdist_group": ("devnet",)}
    assert _marks("console/test_console_browser.py", "page", "browser") == {"slow": (), "xdist_group": ("browser",)}
    assert _marks("sandbox/test_sandbox_e2e.py") == {"slow": ()}
    assert _marks("wallet/test_wallet.py", "ledger") == {}
    assert _marks("wallet/test_policy.py") == {}
    assert _marks("mcp/test_mcp_server.py") == {"slow": ()} and _marks("mcp/test_mcp_startup.py") == {}
    assert _marks("e2e/test_examples.py") == {"slow": ()}
