"""UsdcChain trusts no answer it cannot check: an empty ``0x`` or an RPC error is an error, never "unused"."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from imagine_agent.chain import AUTHORIZATION_USED, UsdcChain, examine, rpc_origin
from imagine_agent.errors import ConfigurationError, ImagineConnectionError, ImagineError, ProtocolError
from imagine_agent.x402 import NETWORKS
from tests.hypothesis_profiles import examples

USDC = NETWORKS["base"].usdc
PAYER = "0x" + "11" * 20
NONCE = "0x" + "22" * 32


def node(answers: dict[str, Any]) -> UsdcChain:
    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        answer = answers[body["method"]]
        if isinstance(answer, dict) and "error" in answer:
            return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], **answer})
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "result": answer})

    return UsdcChain("https://user:pw@rpc.example/v2/SECRET?key=SECRET", transport=httpx.MockTransport(handle))


def test_an_empty_eth_call_answer_is_an_error_not_an_unused_nonce() -> None:
    with node({"eth_call": "0x"}) as chain, pytest.raises(ProtocolError, match="not one word"):
        chain.authorization_used(USDC, PAYER, NONCE)


def test_an_rpc_error_is_an_error_not_an_unused_nonce() -> None:
    with (
        node({"eth_call": {"error": {"code": -32000, "message": "header not found"}}}) as chain,
        pytest.raises(ProtocolError, match="header not found"),
    ):
        chain.authorization_used(USDC, PAYER, NONCE)


def test_the_chain_id_and_the_usdc_code_are_checked() -> None:
    with (
        node({"eth_chainId": "0x1", "eth_getCode": "0x6080"}) as chain,
        pytest.raises(ConfigurationError, match="chain 1, not base"),
    ):
        chain.check("base")
    with (
        node({"eth_chainId": hex(8453), "eth_getCode": "0x"}) as chain,
        pytest.raises(ConfigurationError, match="no contract code"),
    ):
        chain.check("base")
    with node({"eth_chainId": hex(8453), "eth_getCode": "0x6080"}) as chain:
        assert chain.check("base").chain_id == 8453


def test_repr_and_errors_show_scheme_and_host_only() -> None:
    with node({}) as chain:
        assert repr(chain) == "UsdcChain(https://rpc.example)"
    assert rpc_origin("http://127.0.0.1:8545/key/SECRET") == "http://127.0.0.1:8545"
    with UsdcChain("http://127.0.0.1:1/SECRET?k=SECRET") as closed, pytest.raises(ImagineConnectionError) as caught:
        closed.chain_id()
    assert "SECRET" not in str(caught.value)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=70)
    | st.sampled_from(["0x", "0x0", "0x1", "0x" + "00" * 32, "0x" + "00" * 31 + "01", "0xzz", hex(2**70)]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["number", "timestamp", "topics", "transactionHash", "blockNumber", "status", "logs", "message", "code"]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=8,
)


ANY_ANSWER_FOUND = {  # hypothesis found it (issue 24 (b)): ``"logs": true`` raised a bare TypeError
    "eth_call": "0x" + "00" * 32,
    "eth_getBlockByNumber": {"number": "0x1", "timestamp": "0x1"},
    "eth_getLogs": [],
    "eth_getTransactionReceipt": {"status": "0x1", "logs": True},
}


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(answers=ANY_ANSWER_FOUND, tx="0x" + "ab" * 32)
@given(
    answers=st.fixed_dictionaries(
        {
            "eth_call": JSON | st.fixed_dictionaries({"error": JSON}),
            "eth_getBlockByNumber": JSON
            | st.builds(lambda n, t: {"number": hex(n), "timestamp": hex(t)}, st.integers(0, 10), st.integers(0, 2000)),
            "eth_getLogs": JSON,
            "eth_getTransactionReceipt": JSON,
        }
    ),
    tx=st.none() | st.just("0x" + "ab" * 32),
)
def test_any_rpc_answer_ends_in_a_finding_or_a_clear_error(answers: dict[str, Any], tx: str | None) -> None:
    """Whatever a node answers, reconcile's reading ends in a Finding or an ImagineError; "released" only
    when the node said, in well-formed words, "unused" and "block time at or past validBefore"."""
    with node(answers) as chain:
        try:
            found = examine(
                chain, asset=USDC, payer=PAYER, nonce=NONCE, valid_after=1, valid_before=1000, transaction=tx
            )
        except ImagineError:
            return
    if found.outcome == "released":
        assert answers["eth_call"] == "0x" + "00" * 32
        block = answers["eth_getBlockByNumber"]
        assert isinstance(block, dict) and int(block["timestamp"], 16) >= 1000


USED = [AUTHORIZATION_USED, "0x" + PAYER[2:].rjust(64, "0"), NONCE]
GOOD_LOG = {"address": USDC, "topics": USED, "data": "0x"}


@pytest.mark.parametrize(
    ("receipt", "fault"),
    [
        ({"status": "0x1", "logs": True}, "logs are True, not a list"),
        ({"status": "0x1"}, "logs are None, not a list"),
        ({"status": "0x1", "logs": {"0": GOOD_LOG}}, "not a list"),
        ({"status": "0x1", "logs": ["0xdead"]}, "a log is '0xdead', not an object"),
        ({"status": "0x1", "logs": [{**GOOD_LOG, "topics": "0xdead"}]}, "topics are '0xdead', not a list"),
        ({"status": "0x1", "logs": [{**GOOD_LOG, "topics": None}]}, "topics are None"),
        ({"status": "0x1", "logs": [{**GOOD_LOG, "topics": [1, 2, 3]}]}, "not a list of hex strings"),
        ({"status": "0x1", "logs": [{**GOOD_LOG, "address": None}]}, "address is None"),
        ({"status": "0x1", "logs": [{**GOOD_LOG, "data": 7}]}, "data is 7"),
        ({"status": True, "logs": [GOOD_LOG]}, "a receipt status"),
    ],
    ids=[
        "logs-true",
        "logs-missing",
        "logs-object",
        "log-string",
        "topics-string",
        "topics-null",
        "topics-ints",
        "address-null",
        "data-int",
        "status-bool",
    ],
)
def test_a_malformed_receipt_is_a_clear_error_naming_the_rpc(receipt: dict[str, Any], fault: str) -> None:
    with node({}) as chain, pytest.raises(ProtocolError) as caught:
        chain.receipt_uses(receipt, USDC, PAYER, NONCE)
    assert "the RPC https://rpc.example" in str(caught.value) and fault in str(caught.value)
    assert "SECRET" not in str(caught.value)


def test_a_well_formed_receipt_is_read() -> None:
    with node({}) as chain:
        assert chain.receipt_uses({"status": "0x1", "logs": [GOOD_LOG]}, USDC, PAYER, NONCE)
        assert chain.receipt_uses(
            {"status": "0x1", "logs": [{**GOOD_LOG, "topics": [t.upper() for t in USED]}]}, USDC.lower(), PAYER, NONCE
        )
        assert not chain.receipt_uses({"status": "0x1", "logs": []}, USDC, PAYER, NONCE)
        assert not chain.receipt_uses({"status": "0x1", "logs": [{**GOOD_LOG, "address": PAYER}]}, USDC, PAYER, NONCE)
        assert not chain.receipt_uses({"status": "0x0", "logs": True}, USDC, PAYER, NONCE)  # reverted: no logs read


def test_an_oversized_rpc_answer_is_an_error() -> None:
    huge = httpx.MockTransport(lambda request: httpx.Response(200, content=b'{"result": "' + b"0" * 9_000_000))
    with UsdcChain("http://rpc.test", transport=huge) as chain, pytest.raises(ProtocolError, match="oversized"):
        chain.chain_id()


@pytest.mark.e2e
def test_a_node_trickling_its_answer_hits_the_total_deadline() -> None:
    """Each byte comes well within the read timeout, the whole answer does not: a total deadline applies."""
    import socket
    import threading
    import time as _time

    from imagine_agent.errors import ImagineTimeoutError

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    body = b'{"jsonrpc": "2.0", "id": 1, "result": "0x2105"}' + b" " * 40

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
            )
            for i in range(len(body)):
                try:
                    conn.sendall(body[i : i + 1])
                except OSError:
                    return
                _time.sleep(0.05)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with (
        UsdcChain(f"http://127.0.0.1:{server.getsockname()[1]}", timeout=0.5) as chain,
        pytest.raises(ImagineTimeoutError, match="did not finish"),
    ):
        chain.chain_id()
    server.close()
