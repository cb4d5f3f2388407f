"""x402 v2: ``PAYMENT-REQUIRED``, ``PAYMENT-SIGNATURE``, ``PAYMENT-RESPONSE``. No I/O.

A v2 requirement is parsed into our ``PaymentRequirements`` (network by our name, ``amount`` as the
one price field), so policy, caps and ledger treat both versions alike; the raw entry, the 402's
``resource`` and ``extensions`` travel along in ``OfferV2`` and are echoed in the payment exactly as
the spec says (``accepted`` is the entry as offered, byte for byte after JSON parsing).
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ..errors import ProtocolError
from .evm import caip2_of, network_from_caip2
from .types import (
    ExactEvmPayload,
    OfferV2,
    PaymentPayloadV2,
    PaymentRequired,
    PaymentRequiredV2,
    PaymentRequirements,
    PaymentRequirementsV2,
    ResourceInfo,
)
from .v1 import check_single_price, unb64json

__all__ = [
    "PAYMENT_IDENTIFIER",
    "PAYMENT_REQUIRED_HEADER",
    "PAYMENT_SIGNATURE_HEADER",
    "RECEIPT_HEADER",
    "X402_VERSION",
    "encode_payment_required",
    "envelope",
    "parse_payment_required_header",
    "payment_id_for",
    "payment_id_of",
    "requirement_from_v2",
]

X402_VERSION = 2
PAYMENT_REQUIRED_HEADER = "PAYMENT-REQUIRED"
PAYMENT_SIGNATURE_HEADER = "PAYMENT-SIGNATURE"
RECEIPT_HEADER = "PAYMENT-RESPONSE"
PAYMENT_IDENTIFIER = "payment-identifier"
_PAYMENT_ID = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


def parse_payment_required_header(value: str) -> PaymentRequired:
    """Decode a ``PAYMENT-REQUIRED`` header into the shape policy checks; malformed: ``ProtocolError``."""
    raw = unb64json(value, PAYMENT_REQUIRED_HEADER)
    try:
        required = PaymentRequiredV2.model_validate(raw)
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"]
        raise ProtocolError(f"the server's PAYMENT-REQUIRED is not a valid x402 v2 answer: {problem}") from None
    if not required.accepts:
        raise ProtocolError(f"the server's 402 offers no way to pay ({required.error or 'no reason given'})")
    resource = raw.get("resource") if isinstance(raw.get("resource"), dict) else None
    extensions = raw.get("extensions") if isinstance(raw.get("extensions"), dict) else None
    normalized = []
    for entry, parsed in zip(raw["accepts"], required.accepts, strict=True):
        check_single_price(entry)
        requirement = requirement_from_v2(parsed, required.resource, entry)
        offer = OfferV2(
            accepted=copy.deepcopy(entry), resource=copy.deepcopy(resource), extensions=copy.deepcopy(extensions)
        )
        normalized.append(requirement.with_v2(offer))
    result = PaymentRequired(x402_version=X402_VERSION, error=required.error or "", accepts=normalized)
    if extensions is not None:
        result.__pydantic_extra__ = {**(result.__pydantic_extra__ or {}), "extensions": copy.deepcopy(extensions)}
    return result


def requirement_from_v2(
    parsed: PaymentRequirementsV2, resource: ResourceInfo | None, entry: Mapping[str, Any] | None = None
) -> PaymentRequirements:
    """A v2 requirement in the shape policy, ledger and signer read: our network name, one price field."""
    schema = entry.get("outputSchema") if entry is not None else None
    return PaymentRequirements(
        scheme=parsed.scheme,
        network=network_from_caip2(parsed.network) or parsed.network,
        max_amount_required=parsed.amount,
        resource=resource.url if resource else "",
        description=resource.description if resource else "",
        mime_type=resource.mime_type if resource else "",
        pay_to=parsed.pay_to,
        max_timeout_seconds=parsed.max_timeout_seconds,
        asset=parsed.asset,
        output_schema=schema if isinstance(schema, dict) else None,
        extra=parsed.extra,
    )


def payment_id_for(nonce: str) -> str:
    """The ``payment-identifier`` of one signature: ``pay_`` + 32 hex derived from its random EIP-3009 nonce.

    One id per signature (the extension's recommendation), unpredictable before the signature exists, and
    the same on every re-send of that very header (it travels inside it, journaled): a new signature for
    the same request, or another wallet's for the same prompt, never reuses an id a server has seen.
    """
    return "pay_" + hashlib.sha256(f"x402-payment-identifier:{nonce.lower()}".encode()).hexdigest()[:32]


def payment_id_of(payment: PaymentPayloadV2) -> str | None:
    """The ``payment-identifier`` a v2 payment carries, if any."""
    declared = (payment.extensions or {}).get(PAYMENT_IDENTIFIER)
    info = declared.get("info") if isinstance(declared, dict) else None
    found = info.get("id") if isinstance(info, dict) else None
    return found if isinstance(found, str) else None


def _extensions(offer: OfferV2, nonce: str) -> dict[str, Any] | None:
    """The 402's extensions, echoed; a declared ``payment-identifier`` gets this signature's id in its ``info``."""
    if offer.extensions is None:
        return None
    extensions = copy.deepcopy(offer.extensions)
    declared = extensions.get(PAYMENT_IDENTIFIER)
    if isinstance(declared, dict):
        payment_id = payment_id_for(nonce)
        if not _PAYMENT_ID.match(payment_id):
            raise ValueError("a payment-identifier id is 16-128 letters, digits, '_' or '-'")
        info = declared.get("info")
        declared["info"] = {**(info if isinstance(info, dict) else {"required": False}), "id": payment_id}
    return extensions


def envelope(requirement: PaymentRequirements, signed: ExactEvmPayload) -> PaymentPayloadV2:
    offer = requirement.v2
    if offer is None:
        raise ValueError("not a v2 requirement")
    return PaymentPayloadV2(
        x402_version=X402_VERSION,
        network=requirement.network,
        payload=signed,
        accepted=copy.deepcopy(offer.accepted),
        **({"resource": copy.deepcopy(offer.resource)} if offer.resource is not None else {}),
        **({"extensions": ext} if (ext := _extensions(offer, signed.authorization.nonce)) is not None else {}),
    )


def encode_payment_required(
    accepts: list[Mapping[str, Any]],
    *,
    resource: Mapping[str, Any],
    error: str,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON a v2 server puts (base64) in ``PAYMENT-REQUIRED``; networks given by our name become CAIP-2."""
    entries = []
    for entry in accepts:
        network = str(entry["network"])
        entries.append({**entry, "network": network if ":" in network else caip2_of(network)})
    body: dict[str, Any] = {"x402Version": X402_VERSION, "error": error, "resource": dict(resource), "accepts": entries}
    if extensions:
        body["extensions"] = dict(extensions)
    return body
