"""``python -m benchmarks.chain_settlement``: a paid create settled on Circle's USDC over anvil (a real
``transferWithAuthorization`` sent and mined) vs the sandbox's simulated balances, in the same run.

Needs the devnet's npm packages (``.ci/setup-chain.sh`` or a first ``imagine-agent devnet``). Prints medians
and the ratio; not wired into ``python -m benchmarks`` (it needs the chain packages).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from imagine_agent.client import ImagineClient
from imagine_agent.devnet import Devnet
from imagine_agent.ledger import Caps, open_ledger
from imagine_agent.sandbox import SandboxConfig, SandboxServer
from imagine_agent.wallet import PaymentPolicy, Wallet
from imagine_agent.x402 import PrivateKeySigner

N = 20


def run(config: SandboxConfig, key: str) -> float:
    """Median milliseconds of N paid creates (after one warm-up) through the sync client."""
    with SandboxServer(config) as server, tempfile.TemporaryDirectory() as d:
        ledger = open_ledger(Path(d) / "l.sqlite3")
        policy = PaymentPolicy(caps=Caps(per_call=5_000_000, daily=None, total=None))
        wallet = Wallet(PrivateKeySigner(key), ledger, policy)
        with ImagineClient(server.url, wallet=wallet) as c:
            c.create("warm up")
            times = []
            for i in range(N):
                t = time.perf_counter()
                c.create(f"video {i}")
                times.append(time.perf_counter() - t)
        ledger.close()
    return statistics.median(times) * 1000


def main() -> None:
    t = time.perf_counter()
    with Devnet(payers=1, amount=1_000_000_000) as net:
        start = time.perf_counter() - t
        config = SandboxConfig(speed=600, rpc_url=net.rpc_url, relayer_key=net.relayer.private_key)
        chain = run(config, net.payers[0].private_key)
    simulated = run(SandboxConfig(speed=600), PrivateKeySigner.generate().export_private_key())
    print(
        f"devnet start incl. USDC deploy: {start * 1000:.0f} ms; paid create, median of {N}: "
        f"on chain {chain:.1f} ms, simulated {simulated:.1f} ms (baseline, same run), ratio {chain / simulated:.2f}x"
    )


if __name__ == "__main__":
    main()
