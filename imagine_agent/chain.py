"""Read-only USDC state over plain JSON-RPC (no web3): the chain is the only proof a payment did not settle.

``authorizationState(payer, nonce)`` is EIP-3009's record of used (or cancelled) nonces; ``balanceOf`` the
wallet's USDC; the ``AuthorizationUsed`` / ``AuthorizationCanceled`` logs say which of the two happened and
in which transaction. Nothing here trusts an answer it cannot check: ``check(network)`` proves the node is
the right chain with USDC's code at the address before anything else is read, an empty ``0x`` from an
``eth_call`` is an error (no contract answered), never "0", and every RPC error raises.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from pydantic_core import from_json

from .errors import ConfigurationError, ImagineConnectionError, ImagineTimeoutError, ProtocolError
from .tls import tls_context
from .x402 import Network, keccak256, network_of

__all__ = ["AuthorizationEvent", "Block", "Finding", "RpcError", "UsdcChain", "examine", "rpc_origin"]

AUTHORIZATION_STATE = keccak256(b"authorizationState(address,bytes32)")[:4].hex()
BALANCE_OF = keccak256(b"balanceOf(address)")[:4].hex()
AUTHORIZATION_USED = "0x" + keccak256(b"AuthorizationUsed(address,bytes32)").hex()
AUTHORIZATION_CANCELED = "0x" + keccak256(b"AuthorizationCanceled(address,bytes32)").hex()
TRANSFER = "0x" + keccak256(b"Transfer(address,address,uint256)").hex()
MAX_RPC_BYTES = 8 * 1024 * 1024
LOG_CHUNK = 5_000  # blocks per eth_getLogs when searching past validBefore (common provider limits: 10k)
LATE_CANCEL_BLOCKS = 200_000  # how far past validBefore a cancellation is looked for (~4.6 days of Base blocks)


def _word(hex_value: str) -> str:
    return hex_value.lower().removeprefix("0x").rjust(64, "0")


def _shown(value: Any) -> str:
    """A bad RPC value, short and inert, for an error message."""
    return repr(value)[:80]


def rpc_origin(url: str) -> str:
    """An RPC URL as scheme + host (+ port): providers put API keys in the path, query or userinfo."""
    try:
        parsed = httpx.URL(url)
        origin = f"{parsed.scheme}://{parsed.host}" if parsed.host else "<invalid RPC URL>"
        return origin + (f":{parsed.port}" if parsed.port else "")
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<invalid RPC URL>"


class RpcError(ProtocolError):
    """The node answered a JSON-RPC error object; ``rpc_message`` is its text (a revert reason, say)."""

    def __init__(self, message: str, rpc_message: str) -> None:
        super().__init__(message)
        self.rpc_message = rpc_message


@dataclass(frozen=True)
class Block:
    number: int
    timestamp: int


@dataclass(frozen=True)
class AuthorizationEvent:
    """What happened to a nonce on chain, read from its log."""

    kind: Literal["used", "cancelled"]
    transaction: str
    block: int


class UsdcChain:
    """USDC reads against a JSON-RPC endpoint (``IMAGINE_RPC_URL``); any node speaking standard JSON-RPC."""

    def __init__(self, rpc_url: str, *, transport: httpx.BaseTransport | None = None, timeout: float = 10.0) -> None:
        self.rpc_url = rpc_url
        self.origin = rpc_origin(rpc_url)
        self._http = httpx.Client(transport=transport, verify=tls_context(), timeout=timeout)
        self._timeout = timeout
        self._id = 0
        self._checked: set[str] = set()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> UsdcChain:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"UsdcChain({self.origin})"

    # ------------------------------------------------------------------------------------ transport
    def rpc(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC call; its ``result`` (may be None), or an error naming the method, never the URL's secrets."""
        self._id += 1
        payload: dict[str, Any] = {"jsonrpc": "2.0", "id": self._id, "method": method, "params": params}
        deadline = time.monotonic() + self._timeout  # a total deadline: a node trickling bytes cannot stall us
        chunks: list[bytes] = []
        try:
            with self._http.stream("POST", self.rpc_url, json=payload) as resp:
                size = 0
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > MAX_RPC_BYTES:
                        raise ProtocolError(f"the RPC {self.origin} answered {method} with an oversized body")
                    if time.monotonic() > deadline:
                        raise ImagineTimeoutError(f"the RPC {self.origin} did not finish answering {method} in time")
                    chunks.append(chunk)
        except httpx.TimeoutException:
            raise ImagineTimeoutError(f"the RPC {self.origin} did not answer {method} in time") from None
        except httpx.TransportError as exc:
            raise ImagineConnectionError(
                f"RPC {type(exc).__name__}: cannot reach the RPC endpoint {self.origin}"
            ) from None
        try:
            body = from_json(b"".join(chunks))  # depth-capped, unlike resp.json() (see flows._json)
        except ValueError:
            raise ProtocolError(
                f"the RPC {self.origin} answered {method} with HTTP {resp.status_code}, not JSON-RPC"
            ) from None
        if not isinstance(body, dict):
            raise ProtocolError(f"the RPC {self.origin} answered {method} with a non-object body")
        error = body.get("error")
        if error is not None:
            message = str(error.get("message") if isinstance(error, dict) else error)
            raise RpcError(f"the RPC {self.origin} refused {method}: {message[:200]!r}", message)
        if "result" not in body:
            raise ProtocolError(f"the RPC {self.origin} answered {method} without a result")
        return body["result"]

    def quantity(self, value: Any, what: str) -> int:
        if not isinstance(value, str) or not value.startswith("0x") or len(value) < 3:
            raise ProtocolError(f"the RPC {self.origin} gave {what} as {str(value)[:80]!r}, not a hex quantity")
        try:
            return int(value, 16)
        except ValueError:
            raise ProtocolError(f"the RPC {self.origin} gave {what} as {value[:80]!r}, not a hex quantity") from None

    # ---------------------------------------------------------------------------------------- reads
    def chain_id(self) -> int:
        return self.quantity(self.rpc("eth_chainId", []), "eth_chainId")

    def code(self, address: str) -> str:
        result = self.rpc("eth_getCode", [address, "latest"])
        if not isinstance(result, str) or not result.startswith("0x"):
            raise ProtocolError(f"the RPC {self.origin} answered eth_getCode with {str(result)[:80]!r}")
        return result

    def check(self, network: Network | str) -> Network:
        """Prove this node is ``network`` (chain id) and USDC has code there; raise otherwise."""
        net = network_of(network) if isinstance(network, str) else network
        chain_id = self.chain_id()
        if chain_id != net.chain_id:
            raise ConfigurationError(
                f"the RPC {self.origin} is chain {chain_id}, not {net.name} ({net.chain_id}): nothing was read "
                f"from it. Point IMAGINE_RPC_URL at a {net.name} node."
            )
        if self.code(net.usdc) in ("0x", "0x0", ""):
            raise ConfigurationError(
                f"the RPC {self.origin} has no contract code at USDC's address {net.usdc} on {net.name}: "
                "it is not a node of that chain (or not synced). Nothing was read from it."
            )
        return net

    def _call(self, to: str, data: str, what: str) -> int:
        result = self.rpc("eth_call", [{"to": to, "data": "0x" + data}, "latest"])
        if not isinstance(result, str) or len(result) != 66:
            # "0x" is what a node answers for an address without code: never read it as 0 (nonce unused).
            raise ProtocolError(f"the RPC {self.origin} answered {what} with {str(result)[:80]!r}, not one word")
        return self.quantity(result, what)

    def usdc_balance(self, network: str, address: str) -> int:
        """``address``'s USDC on ``network``, after proving (once per network) that this node is that chain."""
        if network not in self._checked:
            self.check(network)
            self._checked.add(network)
        return self.balance_of(network_of(network).usdc, address)

    def authorization_used(self, asset: str, payer: str, nonce: str) -> bool:
        """True once the nonce was used (settled) or cancelled on chain: either way it can't settle again."""
        return self._call(asset, AUTHORIZATION_STATE + _word(payer) + _word(nonce), "authorizationState") != 0

    def balance_of(self, asset: str, address: str) -> int:
        return self._call(asset, BALANCE_OF + _word(address), "balanceOf")

    def block(self, number: int | Literal["latest"] = "latest") -> Block:
        tag = number if isinstance(number, str) else hex(number)
        result = self.rpc("eth_getBlockByNumber", [tag, False])
        if not isinstance(result, dict):
            raise ProtocolError(f"the RPC {self.origin} has no block {tag}")
        return Block(
            self.quantity(result.get("number"), "a block number"),
            self.quantity(result.get("timestamp"), "a block timestamp"),
        )

    def block_at(self, timestamp: int, latest: Block | None = None) -> int:
        """The last block whose timestamp is at most ``timestamp`` (0 if none): a binary search, ~log2(height) reads."""
        latest = latest or self.block()
        if latest.timestamp <= timestamp:
            return latest.number
        low, high = 0, latest.number  # invariant: block(high).timestamp > timestamp
        if self.block(0).timestamp > timestamp:
            return 0
        while high - low > 1:
            middle = (low + high) // 2
            if self.block(middle).timestamp <= timestamp:
                low = middle
            else:
                high = middle
        return low

    def authorization_events(
        self, asset: str, payer: str, nonce: str, from_block: int, to_block: int
    ) -> list[AuthorizationEvent]:
        """``AuthorizationUsed`` / ``AuthorizationCanceled`` logs of (payer, nonce) in a block range."""
        topics = [[AUTHORIZATION_USED, AUTHORIZATION_CANCELED], "0x" + _word(payer), "0x" + _word(nonce)]
        result = self.rpc(
            "eth_getLogs",
            [{"address": asset, "fromBlock": hex(from_block), "toBlock": hex(to_block), "topics": topics}],
        )
        if not isinstance(result, list):
            raise ProtocolError(f"the RPC {self.origin} answered eth_getLogs with {str(result)[:80]!r}")
        events = []
        for log in result:
            if not isinstance(log, dict) or not isinstance(log.get("topics"), list) or not log["topics"]:
                raise ProtocolError(f"the RPC {self.origin} answered eth_getLogs with a malformed log")
            if log.get("removed") is True:
                continue  # reorged away
            topic = str(log["topics"][0]).lower()
            kind: Literal["used", "cancelled"] = "used" if topic == AUTHORIZATION_USED else "cancelled"
            if topic not in (AUTHORIZATION_USED, AUTHORIZATION_CANCELED):
                continue
            tx = log.get("transactionHash")
            if not isinstance(tx, str):
                raise ProtocolError(f"the RPC {self.origin} gave a log without its transaction hash")
            events.append(AuthorizationEvent(kind, tx, self.quantity(log.get("blockNumber"), "a log's block")))
        return events

    def receipt(self, transaction: str) -> dict[str, Any] | None:
        """The transaction's receipt, or None while it is not mined (or unknown to this node)."""
        result = self.rpc("eth_getTransactionReceipt", [transaction])
        if result is not None and not isinstance(result, dict):
            raise ProtocolError(f"the RPC {self.origin} answered eth_getTransactionReceipt with {str(result)[:80]!r}")
        return result

    def receipt_uses(self, receipt: dict[str, Any], asset: str, payer: str, nonce: str) -> bool:
        """True if a successful receipt carries USDC's ``AuthorizationUsed`` log for (payer, nonce).

        A receipt of the wrong shape (logs not a list, a log not an object, topics not a list of strings,
        address or data not a string) is the RPC's fault: a ``ProtocolError`` naming it, never a bare
        ``TypeError``, and never read as "not settled".
        """
        if self.quantity(receipt.get("status"), "a receipt status") != 1:
            return False
        logs = receipt.get("logs")
        if not isinstance(logs, list):
            raise self._malformed_receipt(f"its logs are {_shown(logs)}, not a list")
        want = [AUTHORIZATION_USED, "0x" + _word(payer), "0x" + _word(nonce)]
        for log in logs:
            if not isinstance(log, dict):
                raise self._malformed_receipt(f"a log is {_shown(log)}, not an object")
            topics, address, data = log.get("topics"), log.get("address"), log.get("data", "")
            if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
                raise self._malformed_receipt(f"a log's topics are {_shown(topics)}, not a list of hex strings")
            if not isinstance(address, str) or not isinstance(data, str):
                name, value = ("address", address) if not isinstance(address, str) else ("data", data)
                raise self._malformed_receipt(f"a log's {name} is {_shown(value)}, not a hex string")
            if address.lower() == asset.lower() and [t.lower() for t in topics] == want:
                return True
        return False

    def _malformed_receipt(self, why: str) -> ProtocolError:
        return ProtocolError(
            f"the RPC {self.origin} answered eth_getTransactionReceipt with a malformed receipt: {why}"
        )


@dataclass(frozen=True)
class Finding:
    """What the chain proves about one journaled authorization, and the words to record it with."""

    outcome: Literal["paid", "cancelled", "released", "open"]
    reason: str
    transaction: str | None = None


def examine(
    chain: UsdcChain,
    *,
    asset: str,
    payer: str,
    nonce: str,
    valid_after: int,
    valid_before: int,
    transaction: str | None = None,
    latest: Block | None = None,
) -> Finding:
    """Read what happened to (payer, nonce) on a chain already ``check``ed: settled, cancelled, dead or open.

    A named transaction (a ``pending`` payment) is read by its receipt first. A used nonce gets its transaction
    from the ``AuthorizationUsed`` / ``AuthorizationCanceled`` log between the blocks of ``validAfter`` and
    ``validBefore`` (a settlement can only land there). Expiry is judged by the latest block's timestamp: once
    it reached ``validBefore`` the contract refuses the authorization forever.
    """
    if transaction:
        receipt = chain.receipt(transaction)
        if receipt is not None and chain.receipt_uses(receipt, asset, payer, nonce):
            block = chain.quantity(receipt.get("blockNumber"), "a receipt's block")
            return Finding(
                "paid", f"settled on chain: AuthorizationUsed in tx {transaction} (block {block})", transaction
            )
    latest = latest or chain.block()
    if chain.authorization_used(asset, payer, nonce):
        first = chain.block_at(valid_after, latest)
        last = min(latest.number, chain.block_at(valid_before, latest) + 1)
        events = chain.authorization_events(asset, payer, nonce, first, last)
        used = [e for e in events if e.kind == "used"]
        if used:
            e = used[0]
            return Finding(
                "paid", f"settled on chain: AuthorizationUsed in tx {e.transaction} (block {e.block})", e.transaction
            )
        cancelled = [e for e in events if e.kind == "cancelled"]
        # A settlement lands before validBefore, but a cancellation may come any time after: look on, in chunks
        # (providers cap eth_getLogs ranges), for a bounded number of blocks.
        start = last + 1
        while not cancelled and start <= min(latest.number, last + LATE_CANCEL_BLOCKS):
            end = min(latest.number, start + LOG_CHUNK - 1)
            later = chain.authorization_events(asset, payer, nonce, start, end)
            cancelled = [e for e in later if e.kind == "cancelled"]
            start = end + 1
        if cancelled:
            e = cancelled[0]
            return Finding(
                "cancelled",
                f"cancelled on chain: AuthorizationCanceled in tx {e.transaction} "
                f"(block {e.block}); it can never settle",
            )
        return Finding(
            "paid",
            f"authorizationState shows the nonce used on chain, but no AuthorizationUsed or "
            f"AuthorizationCanceled log in blocks {first}-{min(latest.number, start - 1)}: "
            "counted as paid",
        )
    if latest.timestamp >= valid_before:
        return Finding(
            "released",
            f"nonce unused on chain at block {latest.number} (block time {latest.timestamp} "
            f">= validBefore {valid_before}): it can never settle",
        )
    return Finding(
        "open",
        f"nonce unused on chain at block {latest.number}, still valid by block time "
        f"({latest.timestamp} < validBefore {valid_before})",
    )
