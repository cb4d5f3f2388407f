"""The real-chain rows of the reliability report hold: one settlement, exactly the price, nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagine_agent.devnet import install_dir
from tests.chain.conftest import need

from .chain import CHAIN_ROWS, run_chain_row

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("name", "client", "expected"), CHAIN_ROWS, ids=[f"{n}-{c}" for n, c, _ in CHAIN_ROWS])
def test_real_chain_row(name: str, client: str, expected: str, tmp_path: Path) -> None:
    need((install_dir() / ".installed").is_file(), "the devnet's npm packages (anvil, Circle's USDC)")
    result = run_chain_row(name, client, expected, tmp_path)
    assert result.ok, result.problems
    assert result.lost == 0 and result.double_paid == 0
