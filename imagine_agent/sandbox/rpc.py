"""A sliver of Base's JSON-RPC over the sandbox's simulated USDC: enough for ``imagine-agent reconcile``.

``eth_call`` to the USDC asset with ``authorizationState(address,bytes32)`` (1 once a nonce settled) or
``balanceOf(address)``; ``eth_chainId``. Anything else answers a JSON-RPC error, as a node would.
"""

from __future__ import annotations

from typing import Any

from ..chain import AUTHORIZATION_STATE, BALANCE_OF
from ..x402 import NETWORKS
from .state import Sandbox

__all__ = ["answer_rpc"]


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def _result(request_id: Any, value: int) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": "0x" + value.to_bytes(32, "big").hex()}


def answer_rpc(sandbox: Sandbox, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        return _error(None, -32600, "invalid request")
    request_id, method, params = body.get("id"), body.get("method"), body.get("params") or []
    if method == "eth_chainId":
        return {"jsonrpc": "2.0", "id": request_id, "result": hex(NETWORKS[sandbox.config.network].chain_id)}
    if method != "eth_call" or not params or not isinstance(params[0], dict):
        return _error(request_id, -32601, f"method {method!r} not supported by the sandbox")
    call = params[0]
    to, data = str(call.get("to", "")).lower(), str(call.get("data", "")).lower().removeprefix("0x")
    if to != sandbox.config.asset.lower():
        return _result(request_id, 0)
    selector, args = data[:8], data[8:]
    if selector == AUTHORIZATION_STATE and len(args) == 128:
        payer, nonce = "0x" + args[24:64], "0x" + args[64:]
        used = any(s.payer.lower() == payer and s.nonce.lower() == nonce for s in sandbox.settlements())
        return _result(request_id, int(used))
    if selector == BALANCE_OF and len(args) == 64:
        return _result(request_id, sandbox.balance("0x" + args[24:]))
    return _error(request_id, 3, "execution reverted")
