"""x402 v2 and version negotiation, I/O-free: parsing, echo, payment-identifier, receipts, headers."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given
from hypothesis import strategies as st

from imagine_agent.errors import PolicyViolationError, ProtocolError
from imagine_agent.models import PaymentPayloadV2
from imagine_agent.x402 import (
    NETWORKS,
    PrivateKeySigner,
    caip2_of,
    decode_payment_header,
    encode_payment_header,
    network_from_caip2,
    parse_402,
    payment_header_name,
    payment_id_for,
    receipt_from,
    select_requirement,
    sign_payment,
    transfer_typed_data,
    video_models,
)

from ..spec import SPEC_402

USDC = NETWORKS["base"].usdc
PAY_TO = "0x13a9e3ee4A25C3C72D67F42044438aabc54f2b96"


def b64(obj: Any) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


def v2_required(**entry: Any) -> dict[str, Any]:
    accepted = {
        "scheme": "exact",
        "network": "eip155:8453",
        "amount": "1200000",
        "asset": USDC,
        "payTo": PAY_TO,
        "maxTimeoutSeconds": 60,
        "extra": {"name": "USD Coin", "version": "2"},
        **entry,
    }
    return {
        "x402Version": 2,
        "error": "Payment required",
        "resource": {
            "url": "https://api.example/generation/create",
            "description": "a video",
            "mimeType": "application/json",
        },
        "accepts": [accepted],
        "extensions": {
            "payment-identifier": {"info": {"required": False}, "schema": {"type": "object"}},
            "bazaar": {"info": {"input": {"type": "http"}}},
        },
    }


def test_caip2_maps_onto_our_network_table() -> None:
    assert caip2_of("base") == "eip155:8453" and caip2_of("base-sepolia") == "eip155:84532"
    assert network_from_caip2("eip155:84532") == "base-sepolia" and network_from_caip2("eip155:1") is None


def test_a_payment_required_header_means_v2_even_with_a_v1_body() -> None:
    required = parse_402({"PAYMENT-REQUIRED": b64(v2_required())}, SPEC_402)
    (req,) = required.accepts
    assert required.x402_version == 2 and req.x402_version == 2
    assert (req.network, req.amount, req.resource) == ("base", 1_200_000, "https://api.example/generation/create")
    assert parse_402({}, SPEC_402).accepts[0].x402_version == 1  # no header: the body's version


def test_v2_payment_echoes_the_offer_exactly_and_signs_the_checked_amount() -> None:
    raw = v2_required()
    required = parse_402({"payment-required": b64(raw)}, b"{}")
    requirement = select_requirement(required, {"base"})
    signer = PrivateKeySigner.generate()
    payment = sign_payment(requirement, signer, now=1_800_000_000)
    wire = json.loads(base64.b64decode(encode_payment_header(payment)))
    assert set(wire) == {"x402Version", "payload", "accepted", "resource", "extensions"}
    assert wire["accepted"] == raw["accepts"][0] and wire["resource"] == raw["resource"]
    assert wire["payload"]["authorization"]["value"] == "1200000" == str(requirement.amount)
    assert wire["extensions"]["bazaar"] == raw["extensions"]["bazaar"]
    own_id = payment_id_for(payment.payload.authorization.nonce)  # this signature's id, from its random nonce
    assert wire["extensions"]["payment-identifier"] == {
        "info": {"required": False, "id": own_id},
        "schema": {"type": "object"},
    }
    again = sign_payment(requirement, signer, now=1_800_000_000).to_wire()  # the same offer, signed again
    assert again["extensions"]["payment-identifier"]["info"]["id"] != own_id
    # The signature is EIP-3009 under USDC's domain on chain 8453: recovered independently with eth-account.
    typed = transfer_typed_data(requirement, payment.payload.authorization)
    typed["message"]["nonce"] = bytes.fromhex(typed["message"]["nonce"][2:])
    signature = bytes.fromhex(payment.payload.signature[2:])
    assert Account.recover_message(encode_typed_data(full_message=typed), signature=signature) == signer.address


def test_without_the_extension_no_id_is_sent_and_nothing_is_invented() -> None:
    raw = v2_required()
    del raw["extensions"]
    required = parse_402({"payment-required": b64(raw)}, b"{}")
    wire = sign_payment(required.accepts[0], PrivateKeySigner.generate(), now=1_800_000_000).to_wire()
    assert "extensions" not in wire


def test_payment_id_is_pay_and_32_hex_and_stable_per_signature_nonce() -> None:
    first, again, other = (
        payment_id_for("0x" + "a" * 64),
        payment_id_for("0x" + "A" * 64),
        payment_id_for("0x" + "b" * 64),
    )
    assert first == again != other
    assert first.startswith("pay_") and len(first) == 36 and int(first[4:], 16) >= 0


def test_decoding_our_v2_header_round_trips_and_names_its_header() -> None:
    required = parse_402({"payment-required": b64(v2_required())}, b"{}")
    payment = sign_payment(required.accepts[0], PrivateKeySigner.generate(), now=1_800_000_000)
    header = encode_payment_header(payment)
    decoded = decode_payment_header(header)
    assert isinstance(decoded, PaymentPayloadV2) and decoded.network == "base"
    assert decoded.to_wire() == payment.to_wire()
    assert payment_header_name(header) == "PAYMENT-SIGNATURE"
    v1 = sign_payment(parse_402({}, SPEC_402).accepts[0], PrivateKeySigner.generate(), now=1_800_000_000)
    assert payment_header_name(encode_payment_header(v1)) == "X-PAYMENT"


@pytest.mark.parametrize(
    ("entry", "ok"),
    [
        ({"maxAmountRequired": "1200000"}, True),  # hybrid, one price: paid
        ({"maxAmountRequired": "1"}, False),  # hybrid, two prices: refused
    ],
)
def test_a_hybrid_entry_is_paid_only_when_both_price_fields_agree(entry: dict[str, Any], ok: bool) -> None:
    header = {"payment-required": b64(v2_required(**entry))}
    if ok:
        assert parse_402(header, b"{}").accepts[0].amount == 1_200_000
    else:
        with pytest.raises(PolicyViolationError, match="two prices") as info:
            parse_402(header, b"{}")
        assert info.value.code == "ambiguous_price"
    body = json.loads(SPEC_402)
    body["accepts"][0]["amount"] = "5"
    with pytest.raises(PolicyViolationError, match="two prices"):
        parse_402({}, json.dumps(body))


def test_the_v2_receipt_header_is_read_first() -> None:
    v2 = b64({"success": True, "transaction": "0x" + "11" * 32, "network": "eip155:8453", "payer": PAY_TO})
    v1 = b64({"success": True, "transaction": "0x" + "22" * 32, "network": "base", "payer": PAY_TO})
    receipt = receipt_from({"payment-response": v2, "x-payment-response": v1})
    assert receipt is not None and receipt.transaction == "0x" + "11" * 32
    only_v1 = receipt_from({"x-payment-response": v1})
    assert only_v1 is not None and only_v1.transaction == "0x" + "22" * 32
    fallback = receipt_from({"payment-response": "%%%", "x-payment-response": v1})
    assert fallback is not None and fallback.network == "base"
    assert receipt_from({}) is None


def test_video_models_come_from_v1_output_schema_and_v2_bazaar() -> None:
    assert video_models(parse_402({}, SPEC_402)) == (["sora"], "sora")
    raw = v2_required()
    raw["extensions"]["bazaar"]["schema"] = {
        "properties": {
            "input": {
                "properties": {
                    "body": {
                        "properties": {
                            "templateData": {
                                "properties": {"videoModel": {"enum": ["xai-grok-imagine", "fal-kling-o3"]}}
                            }
                        }
                    }
                }
            }
        }
    }
    assert video_models(parse_402({"payment-required": b64(raw)}, b"{}")) == (
        ["xai-grok-imagine", "fal-kling-o3"],
        "xai-grok-imagine",
    )
    del raw["extensions"]
    assert video_models(parse_402({"payment-required": b64(raw)}, b"{}")) == ([], None)


@given(
    st.one_of(
        st.text(max_size=300),
        st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=5),
            max_leaves=20,
        ).map(b64),
        st.fixed_dictionaries(
            {
                "x402Version": st.just(2),
                "accepts": st.lists(
                    st.dictionaries(
                        st.sampled_from(
                            [
                                "scheme",
                                "network",
                                "amount",
                                "asset",
                                "payTo",
                                "maxTimeoutSeconds",
                                "extra",
                                "maxAmountRequired",
                            ]
                        ),
                        st.none() | st.integers(-5, 10**30) | st.text(max_size=50),
                    ),
                    max_size=3,
                ),
            }
        ).map(b64),
    )
)
def test_any_payment_required_header_parses_or_is_a_clean_refusal(value: str) -> None:
    try:
        required = parse_402({"PAYMENT-REQUIRED": value}, b"{}")
    except (ProtocolError, PolicyViolationError):
        return
    for req in required.accepts:
        assert req.amount >= 0 and req.v2 is not None
