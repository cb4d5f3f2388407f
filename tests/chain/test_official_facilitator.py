"""The official x402 v1 facilitator (npm ``x402@1.2.0`` with viem) settles a payment our wallet signed, on
Circle's USDC over anvil; a second settle of the same payment fails on chain."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from imagine_agent.devnet import Devnet
from imagine_agent.ledger import Caps, open_ledger
from imagine_agent.sandbox import SandboxConfig
from imagine_agent.sandbox.config import IMAGINE_PAY_TO
from imagine_agent.sandbox.paywall import payment_required_body
from imagine_agent.wallet import PaymentPolicy, Wallet
from imagine_agent.x402 import NETWORKS, PrivateKeySigner, parse_payment_required

from .conftest import NODE_DIR, need

pytestmark = pytest.mark.e2e
RESOURCE = "http://127.0.0.1:8402/generation/create"


def test_the_official_v1_facilitator_settles_our_payment_on_chain(devnet: Devnet, tmp_path: Path) -> None:
    node = shutil.which("node")
    need(node is not None and (NODE_DIR / "node_modules" / "x402").is_dir(), "tests/chain/node (x402@1.2.0)")
    assert node is not None
    payer = devnet.payers[0]
    body = payment_required_body(SandboxConfig(), resource=RESOURCE, amount=1_000_000, error="X-PAYMENT required")
    ledger = open_ledger(tmp_path / "ledger.sqlite3")
    wallet = Wallet(
        PrivateKeySigner(payer.private_key),
        ledger,
        PaymentPolicy(caps=Caps(per_call=5_000_000, daily=None, total=None)),
    )
    auth = wallet.authorize(parse_payment_required(body), resource_url=RESOURCE, request_hash="r" * 64)
    before_payer, before_payee = devnet.balance(payer.address), devnet.balance(IMAGINE_PAY_TO)
    request = {
        "rpcUrl": devnet.rpc_url,
        "relayerKey": devnet.relayer.private_key,
        "network": "base",
        "settleTimes": 2,
        "paymentPayload": auth.payment.model_dump(by_alias=True, mode="json", exclude_none=True),
        "paymentRequirements": body["accepts"][0],
    }
    done = subprocess.run(
        [node, str(NODE_DIR / "facilitate.mjs")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=NODE_DIR,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["verify"]["isValid"] is True, result["verify"]
    first, second = result["settles"]
    assert first["success"] is True and first["payer"].lower() == payer.address.lower()
    receipt = devnet.chain.receipt(first["transaction"])
    assert receipt is not None and devnet.chain.receipt_uses(receipt, NETWORKS["base"].usdc, payer.address, auth.nonce)
    assert second["success"] is False  # the chain settles a nonce once
    assert "authorization is used or canceled" in json.dumps(second)
    assert devnet.balance(payer.address) == before_payer - 1_000_000
    assert devnet.balance(IMAGINE_PAY_TO) == before_payee + 1_000_000
    ledger.close()
