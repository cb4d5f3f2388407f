"""Which x402 version an answer speaks, and the version-independent operations on top. No I/O.

As the reference clients do, the version is negotiated per answer: a ``PAYMENT-REQUIRED`` header
means v2, otherwise the body's ``x402Version: 1``. The payment then goes back in the same version
(``PAYMENT-SIGNATURE`` or ``X-PAYMENT``), and the receipt is read from ``PAYMENT-RESPONSE``, then
``X-PAYMENT-RESPONSE``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from pydantic import ValidationError

from ..errors import PolicyViolationError, ProtocolError
from . import v1, v2
from .evm import NETWORKS, Signer, network_from_caip2, sign_exact
from .types import PaymentPayload, PaymentPayloadV2, PaymentRequired, PaymentRequirements, SettlementResponse

__all__ = [
    "decode_payment_header",
    "encode_payment_header",
    "parse_402",
    "payment_header_name",
    "receipt_from",
    "select_requirement",
    "sign_payment",
    "video_models",
]


def parse_402(headers: Mapping[str, str], body: bytes | str) -> PaymentRequired:
    """The payment a 402 asks for, in whichever version it speaks (header first, as reference clients)."""
    header = _get(headers, v2.PAYMENT_REQUIRED_HEADER)
    if header:
        return v2.parse_payment_required_header(header)
    return v1.parse_payment_required(body)


def _get(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value


def select_requirement(required: PaymentRequired, networks: Collection[str]) -> PaymentRequirements:
    """The first requirement we can pay: scheme ``exact`` on an allowed, known network."""
    for req in required.accepts:
        if req.scheme == "exact" and req.network in networks and req.network in NETWORKS:
            return req
    offered = ", ".join(f"{r.scheme}/{r.network}" for r in required.accepts)
    raise PolicyViolationError(
        f"the server offers only {offered}; this wallet pays scheme 'exact' on {', '.join(sorted(networks))}. "
        "Nothing was signed.",
        code="network_not_allowed" if any(r.scheme == "exact" for r in required.accepts) else "scheme_not_allowed",
    )


def sign_payment(
    requirement: PaymentRequirements, signer: Signer, *, now: int, nonce: bytes | None = None
) -> PaymentPayload:
    """Build and sign the payment for one requirement, in its version. Policy must have been checked."""
    signed = sign_exact(requirement, signer, now=now, nonce=nonce)
    if requirement.v2 is not None:
        return v2.envelope(requirement, signed)
    return v1.envelope(requirement, signed)


def encode_payment_header(payment: PaymentPayload) -> str:
    return v1.b64json(payment)


def decode_payment_header(value: str) -> PaymentPayload:
    """An ``X-PAYMENT`` or ``PAYMENT-SIGNATURE`` value (v1 or v2 ``exact`` on EVM)."""
    raw = v1.unb64json(value, "the payment header")
    version = raw.get("x402Version") if isinstance(raw, dict) else None
    try:
        if version == v2.X402_VERSION:
            payment: PaymentPayload = PaymentPayloadV2.model_validate(raw)
            accepted = payment.accepted if isinstance(payment, PaymentPayloadV2) else {}
            network = str(accepted.get("network", ""))
            payment.network = network_from_caip2(network) or network  # ours, off the wire
            payment.scheme = str(accepted.get("scheme", ""))  # a v2 payment is in the scheme it accepted
            return payment
        return PaymentPayload.model_validate(raw)
    except ValidationError as exc:
        raise ProtocolError(f"the payment header is not an x402 exact payment: {exc.errors()[0]['msg']}") from None


def payment_header_name(header: str) -> str:
    """The HTTP header a payment goes in: ``PAYMENT-SIGNATURE`` for v2, ``X-PAYMENT`` for v1."""
    try:
        raw = v1.unb64json(header, "the payment header")
    except ProtocolError:
        return v1.PAYMENT_HEADER
    if isinstance(raw, dict) and raw.get("x402Version") == v2.X402_VERSION:
        return v2.PAYMENT_SIGNATURE_HEADER
    return v1.PAYMENT_HEADER


def receipt_from(headers: Mapping[str, str]) -> SettlementResponse | None:
    """The settlement receipt of an answer: ``PAYMENT-RESPONSE`` (v2), then ``X-PAYMENT-RESPONSE`` (v1)."""
    for name in (v2.RECEIPT_HEADER, v1.RECEIPT_HEADER):
        value = _get(headers, name)
        if value:
            try:
                return v1.decode_payment_response(value, name)
            except ProtocolError:
                continue
    return None


def video_models(required: PaymentRequired) -> tuple[list[str], str | None]:
    """The ``videoModel`` enum and default the 402 documents (v1 ``outputSchema``; v2 also bazaar)."""
    for req in required.accepts:
        found = _models_in(req.output_schema, ("input", "bodyFields", "templateData", "properties", "videoModel"))
        if found is not None:
            return found
    extensions = (required.model_extra or {}).get("extensions")
    bazaar = extensions.get("bazaar") if isinstance(extensions, dict) else None
    if isinstance(bazaar, dict):
        path = (
            "schema",
            "properties",
            "input",
            "properties",
            "body",
            "properties",
            "templateData",
            "properties",
            "videoModel",
        )
        found = _models_in(bazaar, path)
        if found is not None:
            return found
    return [], None


def _models_in(tree: Any, path: tuple[str, ...]) -> tuple[list[str], str | None] | None:
    node = tree
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    if not isinstance(node, dict) or not isinstance(node.get("enum"), list):
        return None
    models = [m for m in node["enum"] if isinstance(m, str) and m]
    default = node.get("default") if isinstance(node.get("default"), str) else None
    return models, default if default in models else (models[0] if models else None)
