"""The Done-when flow, as a user runs it: ``imagine-agent devnet``, then ``imagine-agent sandbox --rpc-url``, then
``imagine-agent generate`` with the funded key; balances are read from the node by a separate process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from imagine_agent.devnet import Devnet, install_dir
from imagine_agent.sandbox.config import IMAGINE_PAY_TO
from tests.embedded import sandbox_url

from .conftest import need

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "imagine_agent"]


@contextmanager
def running(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def read_balances(rpc_url: str, *addresses: str) -> list[int]:
    """In a separate process, straight from the node."""
    code = (
        "import json,sys; from imagine_agent.chain import UsdcChain; c=UsdcChain(sys.argv[1]); "
        "print(json.dumps([c.usdc_balance('base', a) for a in sys.argv[2:]]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, rpc_url, *addresses], capture_output=True, text=True, timeout=60, check=True
    )
    balances: list[int] = json.loads(done.stdout)
    return balances


def test_devnet_then_sandbox_then_generate_moves_exactly_the_price(tmp_path: Path) -> None:
    need((install_dir() / ".installed").is_file(), "the devnet's npm packages (anvil, Circle's USDC)")
    env = dict(os.environ)  # the autouse isolated_environment dropped IMAGINE_*
    env["IMAGINE_DATA_DIR"] = str(tmp_path / "data")
    with running([*CLI, "devnet", "--port", "0"], env) as devnet:
        assert devnet.stdout is not None
        info = json.loads(devnet.stdout.readline())  # one JSON object, then it runs until stopped
        rpc_url, payer, relayer = info["rpcUrl"], info["payers"][0], info["relayer"]
        assert info["chainId"] == 8453 and info["usdc"] == "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
        sandbox_env = {**env, "IMAGINE_SANDBOX_RELAYER_KEY": relayer["privateKey"]}
        with running([*CLI, "sandbox", "--rpc-url", rpc_url, "--port", "0", "--speed", "600"], sandbox_env) as sandbox:
            base_url = sandbox_url(sandbox)
            before = read_balances(rpc_url, payer["address"], IMAGINE_PAY_TO)
            client_env = {**env, "IMAGINE_PRIVATE_KEY": payer["privateKey"], "IMAGINE_RPC_URL": rpc_url}
            done = subprocess.run(
                [*CLI, "generate", "a red kite over the sea", "--base-url", base_url, "--json", "--no-wait"],
                capture_output=True,
                text=True,
                env=client_env,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            outcome = json.loads(done.stdout)
            after = read_balances(rpc_url, payer["address"], IMAGINE_PAY_TO)
            price = before[0] - after[0]
            assert price == 1_000_000  # exactly the price of an 8 s video
            assert after[1] - before[1] == price
            assert payer["privateKey"] not in done.stdout + done.stderr
            tx = outcome["paid"]["transaction"]
            receipt = httpx.post(
                rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionReceipt", "params": [tx]}
            ).json()["result"]
            assert receipt["status"] == "0x1"  # the receipt names a real transaction on the node

            poor = {**client_env, "IMAGINE_PRIVATE_KEY": "0x" + "5a" * 32}  # holds no USDC
            refused = subprocess.run(
                [*CLI, "generate", "a blue kite", "--base-url", base_url, "--json", "--no-wait"],
                capture_output=True,
                text=True,
                env=poor,
                timeout=120,
                check=False,
            )
            assert refused.returncode == 3, refused.stdout + refused.stderr
            assert "the video costs 1.000000 USDC: nothing was signed" in json.loads(refused.stdout)["message"]
            assert read_balances(rpc_url, payer["address"], IMAGINE_PAY_TO) == after


def test_bad_devnet_and_chain_sandbox_settings_exit_2_before_anything_runs() -> None:
    need((install_dir() / ".installed").is_file(), "the devnet's npm packages (anvil, Circle's USDC)")
    env = dict(os.environ)  # the autouse isolated_environment dropped IMAGINE_*

    def cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args], capture_output=True, text=True, env={**env, **extra}, timeout=60, check=False
        )

    bad = cli("devnet", "--fund", "not-an-address", "--port", "0")
    assert bad.returncode == 2 and "0x addresses" in bad.stderr
    unfunded = cli("sandbox", "--rpc-url", "http://127.0.0.1:1", "--port", "0")
    assert unfunded.returncode == 2 and "relayer_key" in unfunded.stderr
    with Devnet("base-sepolia", payers=0) as sepolia:
        wrong = cli(
            "sandbox",
            "--rpc-url",
            sepolia.rpc_url + "/?apikey=SECRET",
            "--port",
            "0",
            IMAGINE_SANDBOX_RELAYER_KEY=sepolia.relayer.private_key,
        )
    assert wrong.returncode == 2 and "chain 84532, not base" in " ".join(wrong.stderr.split())
    assert "SECRET" not in wrong.stderr and sepolia.relayer.private_key not in wrong.stderr
