"""x402 v1: the 402 body, ``X-PAYMENT`` and ``X-PAYMENT-RESPONSE``. No I/O."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from pydantic_core import from_json

from ..errors import PolicyViolationError, ProtocolError
from ..wire import WireModel
from .types import (
    ExactEvmPayload,
    PaymentPayload,
    PaymentRequired,
    PaymentRequirements,
    SettlementResponse,
)

__all__ = [
    "MAX_HEADER_CHARS",
    "PAYMENT_HEADER",
    "RECEIPT_HEADER",
    "X402_VERSION",
    "b64json",
    "check_single_price",
    "decode_payment_response",
    "encode_payment_response",
    "envelope",
    "parse_payment_required",
    "unb64json",
]

X402_VERSION = 1
PAYMENT_HEADER = "X-PAYMENT"
RECEIPT_HEADER = "X-PAYMENT-RESPONSE"
MAX_HEADER_CHARS = 16_384


def check_single_price(entry: Mapping[str, Any]) -> None:
    """A hybrid entry naming the price twice (``amount`` and ``maxAmountRequired``) must name it once.

    We cap-check and sign one field; were the two to differ, which one a server charges is a guess.
    """
    amount, max_amount = entry.get("amount"), entry.get("maxAmountRequired")
    if amount is not None and max_amount is not None and str(amount) != str(max_amount):
        raise PolicyViolationError(
            f"refused to pay: the 402 names two prices (amount {amount}, maxAmountRequired {max_amount}); "
            "nothing was signed",
            code="ambiguous_price",
        )


def parse_payment_required(body: bytes | str | Mapping[str, Any]) -> PaymentRequired:
    """Parse a v1 402 body; any malformation becomes ``ProtocolError`` (nothing is ever signed for it)."""
    try:
        raw = body if isinstance(body, Mapping) else from_json(body)
    except ValueError:
        raise ProtocolError("the server's 402 body is not a valid x402 v1 answer: not JSON") from None
    try:
        required = PaymentRequired.model_validate(raw)
    except ValidationError as exc:
        raise ProtocolError(f"the server's 402 body is not a valid x402 v1 answer: {exc.errors()[0]['msg']}") from None
    if required.x402_version != X402_VERSION:
        raise ProtocolError(f"the server's 402 body says x402 version {required.x402_version}; a body speaks 1")
    if not required.accepts:
        raise ProtocolError(f"the server's 402 offers no way to pay ({required.error or 'no reason given'})")
    for entry in raw.get("accepts", []) if isinstance(raw, Mapping) else []:
        if isinstance(entry, Mapping):
            check_single_price(entry)
    return required


def envelope(requirement: PaymentRequirements, signed: ExactEvmPayload) -> PaymentPayload:
    return PaymentPayload(
        x402_version=X402_VERSION, scheme=requirement.scheme, network=requirement.network, payload=signed
    )


def b64json(model: WireModel | Mapping[str, Any]) -> str:
    data = model.to_wire() if isinstance(model, WireModel) else dict(model)
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.b64encode(raw).decode("ascii")


def unb64json(value: str, what: str) -> Any:
    if len(value) > MAX_HEADER_CHARS:
        raise ProtocolError(f"{what} is longer than {MAX_HEADER_CHARS} characters")
    try:
        return from_json(base64.b64decode(value.strip(), validate=True))  # depth-capped, unlike json.loads
    except (binascii.Error, ValueError):
        raise ProtocolError(f"{what} is not base64-encoded JSON") from None


def encode_payment_response(receipt: SettlementResponse) -> str:
    return b64json(receipt)


def decode_payment_response(value: str, what: str = RECEIPT_HEADER) -> SettlementResponse:
    """A settlement receipt (``X-PAYMENT-RESPONSE`` in v1, ``PAYMENT-RESPONSE`` in v2: the same shape)."""
    try:
        return SettlementResponse.model_validate(unb64json(value, what))
    except ValidationError as exc:
        raise ProtocolError(f"{what} is not a settlement receipt: {exc.errors()[0]['msg']}") from None
