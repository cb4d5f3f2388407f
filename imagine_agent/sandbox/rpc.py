"""A sliver of Base's JSON-RPC over the sandbox's simulated USDC: enough for ``imagine-agent reconcile``.

``eth_chainId``; ``eth_getCode`` (a stand-in word at the USDC asset, ``0x`` elsewhere); ``eth_call`` to the
asset with ``authorizationState(address,bytes32)`` (1 once a nonce settled) or ``balanceOf(address)``;
blocks, logs and receipts of a toy chain in which block 0 is genesis (time 0), block *i* is the *i*-th
settlement (at its time) and the latest block is "now" on the sandbox's clock. Anything else answers a
JSON-RPC error, as a node would. (``SandboxConfig.rpc_url`` settles on a real node instead.)
"""

from __future__ import annotations

from typing import Any

from ..chain import AUTHORIZATION_STATE, AUTHORIZATION_USED, BALANCE_OF, TRANSFER
from ..x402 import NETWORKS
from .state import Sandbox, Settlement

__all__ = ["answer_rpc"]

STAND_IN_CODE = "0x" + "fe" * 32  # not USDC's bytecode: only "there is a contract here"


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def _ok(request_id: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def _result(request_id: Any, value: int) -> dict[str, Any]:
    return _ok(request_id, "0x" + value.to_bytes(32, "big").hex())


def _topic(hex_value: str) -> str:
    return "0x" + hex_value.lower().removeprefix("0x").rjust(64, "0")


def _logs(sandbox: Sandbox, settlement: Settlement, block: int) -> list[dict[str, Any]]:
    asset, tx = sandbox.config.asset, settlement.transaction
    common = {"address": asset, "blockNumber": hex(block), "transactionHash": tx, "removed": False}
    return [
        {**common, "topics": [AUTHORIZATION_USED, _topic(settlement.payer), _topic(settlement.nonce)], "data": "0x"},
        {
            **common,
            "topics": [TRANSFER, _topic(settlement.payer), _topic(sandbox.config.pay_to)],
            "data": "0x" + settlement.amount.to_bytes(32, "big").hex(),
        },
    ]


def _block(request_id: Any, number: int, timestamp: float) -> dict[str, Any]:
    return _ok(request_id, {"number": hex(number), "timestamp": hex(int(timestamp))})


def _number(tag: Any, latest: int) -> int | None:
    if tag == "latest" or tag == "pending":
        return latest
    if tag == "earliest":
        return 0
    try:
        return int(str(tag), 16)
    except ValueError:
        return None


def answer_rpc(sandbox: Sandbox, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        return _error(None, -32600, "invalid request")
    request_id, method, params = body.get("id"), body.get("method"), body.get("params") or []
    if sandbox.chain is not None:  # never imitate a chain while real money (or devnet USDC) moves on one
        return _error(request_id, -32601, f"this sandbox settles on {sandbox.chain.chain.origin}: read that node")
    asset = sandbox.config.asset.lower()
    settlements = sandbox.settlements()
    latest = len(settlements) + 1
    if not isinstance(params, list):
        return _error(request_id, -32602, "params must be a list")
    if method == "eth_chainId":
        return _ok(request_id, hex(NETWORKS[sandbox.config.network].chain_id))
    if method == "eth_getCode" and params:
        return _ok(request_id, STAND_IN_CODE if str(params[0]).lower() == asset else "0x")
    if method == "eth_getBlockByNumber" and params:
        number = _number(params[0], latest)
        if number is None or number > latest:
            return _ok(request_id, None)
        if number == 0:
            return _block(request_id, 0, 0)
        return _block(request_id, number, sandbox.now() if number == latest else settlements[number - 1].at)
    if method == "eth_getTransactionReceipt" and params:
        for block, settlement in enumerate(settlements, start=1):
            if settlement.transaction.lower() == str(params[0]).lower():
                return _ok(
                    request_id,
                    {
                        "status": "0x1",
                        "blockNumber": hex(block),
                        "transactionHash": settlement.transaction,
                        "logs": _logs(sandbox, settlement, block),
                    },
                )
        return _ok(request_id, None)
    if method == "eth_getLogs" and params and isinstance(params[0], dict):
        query = params[0]
        low, high = _number(query.get("fromBlock", "earliest"), latest), _number(query.get("toBlock"), latest)
        if low is None or high is None:
            return _error(request_id, -32602, "invalid block range")
        topics = query.get("topics") or []
        logs = [
            log
            for block, s in enumerate(settlements, start=1)
            if low <= block <= high
            for log in _logs(sandbox, s, block)
            if str(query.get("address", "")).lower() == asset
        ]
        for position, wanted in enumerate(topics):
            if wanted is None:
                continue
            allowed = {str(t).lower() for t in (wanted if isinstance(wanted, list) else [wanted])}
            logs = [log for log in logs if len(log["topics"]) > position and log["topics"][position] in allowed]
        return _ok(request_id, logs)
    if method != "eth_call" or not params or not isinstance(params[0], dict):
        return _error(request_id, -32601, f"method {method!r} not supported by the sandbox")
    call = params[0]
    to, data = str(call.get("to", "")).lower(), str(call.get("data", "")).lower().removeprefix("0x")
    if to != asset:
        return _ok(request_id, "0x")  # no contract there, as a node answers
    selector, args = data[:8], data[8:]
    if selector == AUTHORIZATION_STATE and len(args) == 128:
        payer, nonce = "0x" + args[24:64], "0x" + args[64:]
        used = any(s.payer.lower() == payer and s.nonce.lower() == nonce for s in settlements)
        return _result(request_id, int(used))
    if selector == BALANCE_OF and len(args) == 64:
        return _result(request_id, sandbox.balance("0x" + args[24:]))
    return _error(request_id, 3, "execution reverted")
