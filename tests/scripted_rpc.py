"""A scripted Base node: the few JSON-RPC reads reconcile makes, answered from a script, on loopback.

Blocks are one second apart from ``first_time``; ``authorization_used`` is what ``authorizationState``
answers; ``logs`` are the ``AuthorizationUsed`` / ``AuthorizationCanceled`` logs of the one (payer, nonce)
under test, each in its block; ``receipts`` maps a transaction to whatever the node answers for it (well
formed or not). ``handle`` serves it in-process (``httpx.MockTransport``); ``serve`` on a loopback port,
for code that takes an RPC URL (``books.reconcile_ledger``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import httpx

from imagine_agent.chain import AUTHORIZATION_CANCELED, AUTHORIZATION_STATE, AUTHORIZATION_USED
from imagine_agent.x402 import NETWORKS

__all__ = ["ScriptedNode", "receipt_log"]

BASE = NETWORKS["base"]


def _topic(value: str) -> str:
    return "0x" + value.lower().removeprefix("0x").rjust(64, "0")


def receipt_log(kind: Literal["used", "cancelled"], payer: str, nonce: str, *, tx: str, block: int) -> dict[str, Any]:
    """USDC's log for (payer, nonce), as a node returns it."""
    event = AUTHORIZATION_USED if kind == "used" else AUTHORIZATION_CANCELED
    return {
        "address": BASE.usdc,
        "topics": [event, _topic(payer), _topic(nonce)],
        "data": "0x",
        "blockNumber": hex(block),
        "transactionHash": tx,
        "removed": False,
    }


@dataclass
class ScriptedNode:
    """What the chain says; every read answered from these fields."""

    first_time: int
    latest: int
    authorization_used: bool = False
    logs: list[dict[str, Any]] = field(default_factory=list)
    receipts: dict[str, Any] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def timestamp(self, block: int) -> int:
        return self.first_time + block

    def block_at_time(self, timestamp: int) -> int:
        return timestamp - self.first_time

    def answer(self, method: str, params: list[Any]) -> Any:
        self.calls.append(method)
        if method == "eth_chainId":
            return hex(BASE.chain_id)
        if method == "eth_getCode":
            return "0x6080"
        if method == "eth_call":
            data = params[0]["data"].removeprefix("0x")
            assert data.startswith(AUTHORIZATION_STATE), data
            return "0x" + f"{int(self.authorization_used):064x}"
        if method == "eth_getBlockByNumber":
            number = self.latest if params[0] == "latest" else int(params[0], 16)
            return None if number > self.latest else {"number": hex(number), "timestamp": hex(self.timestamp(number))}
        if method == "eth_getLogs":
            low, high = int(params[0]["fromBlock"], 16), int(params[0]["toBlock"], 16)
            return [log for log in self.logs if low <= int(log["blockNumber"], 16) <= high]
        if method == "eth_getTransactionReceipt":
            return self.receipts.get(params[0])
        raise AssertionError(f"reconcile made an unexpected call {method}")

    def _body(self, raw: bytes) -> bytes:
        request = json.loads(raw)
        result = self.answer(request["method"], request["params"])
        return json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}).encode()

    def handle(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=self._body(request.content), headers={"content-type": "application/json"})

    @contextmanager
    def serve(self) -> Iterator[str]:
        """This node on a loopback port; yields its URL."""
        node = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = node._body(self.rfile.read(int(self.headers["content-length"])))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/rpc"
        finally:
            server.shutdown()
            server.server_close()
