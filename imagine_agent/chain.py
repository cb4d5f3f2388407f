"""Read-only USDC state over plain JSON-RPC (no web3): the chain is the only proof a payment did not settle.

``authorizationState(payer, nonce)`` is EIP-3009's record of used nonces; ``balanceOf`` the wallet's USDC.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic_core import from_json

from .errors import ImagineConnectionError, ProtocolError
from .x402 import keccak256

__all__ = ["UsdcChain"]

AUTHORIZATION_STATE = keccak256(b"authorizationState(address,bytes32)")[:4].hex()
BALANCE_OF = keccak256(b"balanceOf(address)")[:4].hex()


def _word(hex_value: str) -> str:
    return hex_value.lower().removeprefix("0x").rjust(64, "0")


class UsdcChain:
    """Two eth_calls against a JSON-RPC endpoint (``IMAGINE_RPC_URL``)."""

    def __init__(self, rpc_url: str, *, transport: httpx.BaseTransport | None = None, timeout: float = 10.0) -> None:
        self.rpc_url = rpc_url
        self._http = httpx.Client(transport=transport, timeout=timeout)
        self._id = 0

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"UsdcChain({httpx.URL(self.rpc_url).copy_with(username=None, password=None, query=None)!s})"

    def _call(self, to: str, data: str) -> int:
        self._id += 1
        payload: dict[str, Any] = {"jsonrpc": "2.0", "id": self._id, "method": "eth_call",
                                   "params": [{"to": to, "data": "0x" + data}, "latest"]}
        try:
            resp = self._http.post(self.rpc_url, json=payload)
        except httpx.TransportError as exc:
            raise ImagineConnectionError(f"RPC {type(exc).__name__}: cannot reach the RPC endpoint") from None
        try:
            body = from_json(resp.content)  # depth-capped, unlike resp.json() (see flows._json)
            result = body["result"]
            return int(result, 16) if result not in ("0x", "") else 0
        except (ValueError, KeyError, TypeError):
            raise ProtocolError(f"the RPC answered HTTP {resp.status_code} without a usable eth_call result") from None

    def authorization_used(self, asset: str, payer: str, nonce: str) -> bool:
        """True once the nonce was used (settled) or cancelled on chain: either way it can't settle again."""
        return self._call(asset, AUTHORIZATION_STATE + _word(payer) + _word(nonce)) != 0

    def balance_of(self, asset: str, address: str) -> int:
        return self._call(asset, BALANCE_OF + _word(address))
