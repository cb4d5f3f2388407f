"""x402 v1 exact: signatures must verify with an independent EIP-712 recovery (eth-account)."""

from __future__ import annotations

import base64
import json
import pickle
import time

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given
from hypothesis import strategies as st

from imagine_agent.errors import ConfigurationError, PolicyViolationError, ProtocolError
from imagine_agent.models import PaymentRequired, SettlementResponse
from imagine_agent.x402 import (
    NETWORKS,
    PrivateKeySigner,
    decode_payment_header,
    decode_payment_response,
    encode_payment_header,
    encode_payment_response,
    parse_payment_required,
    select_requirement,
    sign_payment,
    to_checksum_address,
    transfer_typed_data,
)

from ..spec import SPEC_402


def recover(payment, requirement) -> str:
    typed = transfer_typed_data(requirement, payment.payload.authorization)
    return Account.recover_message(encode_typed_data(full_message=typed), signature=payment.payload.signature)


def test_spec_402_round_trips_exactly() -> None:
    required = PaymentRequired.model_validate_json(SPEC_402)
    assert required.to_wire() == json.loads(SPEC_402)
    assert required.accepts[0].amount == 1_000_000
    assert required.accepts[0].output_schema is not None


def test_signature_for_spec_402_recovers_independently() -> None:
    requirement = parse_payment_required(SPEC_402).accepts[0]
    signer = PrivateKeySigner.generate()
    now = int(time.time())
    payment = sign_payment(requirement, signer, now=now)
    auth = payment.payload.authorization
    assert recover(payment, requirement) == signer.address
    assert auth.to == requirement.pay_to and auth.value == requirement.max_amount_required == "1000000"
    assert int(auth.valid_after) == now - 600
    assert int(auth.valid_before) == now + requirement.max_timeout_seconds
    assert len(bytes.fromhex(auth.nonce[2:])) == 32


def test_signature_matches_eth_account_signing_byte_for_byte() -> None:
    requirement = parse_payment_required(SPEC_402).accepts[0]
    key = "0x" + "11" * 32
    ours = sign_payment(requirement, PrivateKeySigner(key), now=1_800_000_000, nonce=b"\x07" * 32)
    typed = transfer_typed_data(requirement, ours.payload.authorization)
    theirs = Account.sign_typed_data(key, full_message=typed).signature
    assert ours.payload.signature == "0x" + bytes(theirs).hex()


def test_base_sepolia_domain_and_chain_id() -> None:
    body = json.loads(SPEC_402)
    sepolia = NETWORKS["base-sepolia"]
    body["accepts"][0].update(network="base-sepolia", asset=sepolia.usdc, extra={"name": "USDC", "version": "2"})
    requirement = parse_payment_required(body).accepts[0]
    signer = PrivateKeySigner.generate()
    payment = sign_payment(requirement, signer, now=int(time.time()))
    typed = transfer_typed_data(requirement, payment.payload.authorization)
    assert typed["domain"]["chainId"] == 84532
    assert recover(payment, requirement) == signer.address


def test_header_round_trip_is_compact_base64_json() -> None:
    requirement = parse_payment_required(SPEC_402).accepts[0]
    payment = sign_payment(requirement, PrivateKeySigner.generate(), now=int(time.time()))
    header = encode_payment_header(payment)
    raw = json.loads(base64.b64decode(header))
    assert raw["x402Version"] == 1 and raw["scheme"] == "exact" and raw["network"] == "base"
    assert set(raw["payload"]["authorization"]) == {"from", "to", "value", "validAfter", "validBefore", "nonce"}
    assert decode_payment_header(header) == payment


def test_settlement_receipt_round_trip() -> None:
    receipt = SettlementResponse(success=True, transaction="0x" + "ab" * 32, network="base", payer="0x" + "1" * 40)
    assert decode_payment_response(encode_payment_response(receipt)) == receipt


@pytest.mark.parametrize(
    "bad", ["", "!!!", base64.b64encode(b"[1,2]").decode(), base64.b64encode(b"{").decode(), "A" * 20_000]
)
def test_bad_receipts_are_protocol_errors(bad: str) -> None:
    with pytest.raises(ProtocolError):
        decode_payment_response(bad)


def test_select_requirement_refuses_unknown_schemes_and_networks() -> None:
    body = json.loads(SPEC_402)
    body["accepts"][0]["network"] = "ethereum"
    with pytest.raises(PolicyViolationError, match="Nothing was signed"):
        select_requirement(parse_payment_required(body), {"base"})
    body["accepts"][0].update(network="base", scheme="upto")
    with pytest.raises(PolicyViolationError):
        select_requirement(parse_payment_required(body), {"base"})


def test_signer_never_reveals_its_key() -> None:
    key = "0x" + "2f" * 32
    signer = PrivateKeySigner(key)
    for text in (repr(signer), str(signer), f"{signer}"):
        assert key[2:] not in text.lower()
    with pytest.raises(TypeError):
        pickle.dumps(signer)


@pytest.mark.parametrize("key", ["", "0x1234", "zz" * 32, "0x" + "00" * 32])
def test_bad_keys_are_configuration_errors_without_echoing_them(key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        PrivateKeySigner(key)
    if len(key) > 6:
        assert key.removeprefix("0x") not in str(info.value)


def test_checksum_address_matches_eth_utils() -> None:
    from eth_utils import to_checksum_address as reference

    for address in ("0x833589fcd6edb6e08f4c7c32d4f71b54bda02913", "0x13a9e3ee4a25c3c72d67f42044438aabc54f2b96"):
        assert to_checksum_address(address) == reference(address)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=25,
)


@given(json_values)
def test_any_json_402_body_parses_or_is_a_protocol_error(body: object) -> None:
    try:
        parsed = parse_payment_required(json.dumps(body))
    except ProtocolError:
        return
    assert parsed.accepts


@given(
    st.dictionaries(
        st.sampled_from(
            ["scheme", "network", "maxAmountRequired", "resource", "payTo", "maxTimeoutSeconds", "asset", "extra"]
        ),
        json_values,
    )
)
def test_mutated_requirement_parses_or_is_a_protocol_error(changes: dict[str, object]) -> None:
    body = json.loads(SPEC_402)
    body["accepts"][0].update(changes)
    try:
        parse_payment_required(json.dumps(body))
    except ProtocolError:
        pass


@given(st.binary(max_size=300))
def test_random_bytes_as_402_body(raw: bytes) -> None:
    try:
        parse_payment_required(raw)
    except ProtocolError:
        pass


@given(st.text(max_size=200))
def test_random_payment_headers_never_crash(value: str) -> None:
    try:
        decode_payment_header(value)
    except ProtocolError:
        pass
