"""A paying client against the sandbox, wired the way tests/conftest.py wires it: key, SQLite ledger, wallet."""

from __future__ import annotations

from pathlib import Path

from imagine_agent.ledger import Caps, Ledger, open_ledger
from imagine_agent.wallet import PaymentPolicy, Wallet
from imagine_agent.x402 import PrivateKeySigner

__all__ = ["open_wallet"]

# Caps that never stop a benchmark: 10 USDC per call, no daily/total/rate limit (the sandbox prices 1 USDC).
BENCH_CAPS = Caps(per_call=10_000_000)


def open_wallet(directory: Path) -> tuple[Wallet, Ledger]:
    """A fresh throwaway key paying from a new SQLite ledger in ``directory``."""
    ledger = open_ledger(directory / "ledger.sqlite3")
    return Wallet(PrivateKeySigner.generate(), ledger, PaymentPolicy(caps=BENCH_CAPS)), ledger
