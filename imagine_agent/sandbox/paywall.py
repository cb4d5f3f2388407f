"""The paywall: the spec's 402 body, prices, and the one payment verifier.

The 402 body is copied from the provider's documentation (``spec/payment-required.json``): the spec
files are not shipped, so the structure lives here. Verification recovers the EIP-712 signer with the
sandbox's own recovery (``eip712.py``: encoded generically, held to USDC's signature rules, checked against
eth-account in the tests), apart from ``imagine_agent.x402``'s hand-written hashing, so a bug in the client's
signing cannot be mirrored by the server that tests it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..models import PaymentPayload, PaymentPayloadV2, PaymentRequirements
from ..x402 import NETWORKS, X402_VERSION, caip2_of, keccak256
from ..x402.v2 import PAYMENT_IDENTIFIER, encode_payment_required
from .config import SandboxConfig
from .eip712 import TRANSFER_WITH_AUTHORIZATION, recover_signer

__all__ = [
    "DESCRIPTION",
    "OUTPUT_SCHEMA",
    "Verdict",
    "output_schema",
    "payment_required_body",
    "payment_required_v2",
    "price_for",
    "requirement_dict",
    "settlement_transaction",
    "verify_payment",
]

DEFAULT_DURATION = 8
MIN_VALID_BEFORE_MARGIN = 6  # seconds; x402 facilitators reject validBefore < now + 6

DESCRIPTION = (
    "Generate AIGC (ai generated content) using the most advanced video models and optionally coin them "
    "to earn trading fees"
)

OUTPUT_SCHEMA: dict[str, Any] = {
    "input": {
        "type": "http",
        "method": "POST",
        "mimeType": "application/json",
        "discoverable": True,
        "bodyType": "json",
        "bodyFields": {
            "prompt": {
                "type": "string",
                "description": "Text prompt describing the video to generate",
                "required": True,
            },
            "templateData": {
                "type": "string",
                "description": (
                    "JSON stringified object with optional configuration. Include 'image' property here for "
                    "image-to-video generation."
                ),
                "required": False,
                "properties": {
                    "videoModel": {
                        "type": "string",
                        "enum": ["sora"],
                        "default": "sora",
                        "description": "Video generation model to use",
                    },
                    "soraVideoId": {"type": "string", "description": "Sora video ID for remix/continuation"},
                    "duration": {
                        "type": "number",
                        "default": 8,
                        "description": "Video duration in seconds (model-dependent)",
                    },
                    "autoClank": {
                        "type": "boolean",
                        "default": False,
                        "description": (
                            "Automatically deploy a Clanker token for this video with first frame as token. "
                            "Sender is the creator to earn trading fees"
                        ),
                    },
                    "autoEnhance": {
                        "type": "boolean",
                        "default": False,
                        "description": "Automatically enhance the prompt based on video model's prompting guidelines",
                    },
                    "image": {
                        "type": "string",
                        "description": (
                            "Optional image URL (http(s)://) or base64 data URL (data:image/png;base64,...) "
                            "for image-to-video generation"
                        ),
                    },
                },
            },
        },
    },
    "output": {
        "type": "object",
        "properties": {
            "taskId": {
                "type": "string",
                "format": "uuid",
                "description": (
                    "Unique task identifier returned for polling status. Poll for completion status at GET "
                    "eliza.getimagine.club/generation/{taskId}/status endpoint every 15 seconds until status "
                    "is 'completed' or 'failed'. Generation typically takes 1-3 minutes."
                ),
            }
        },
        "notes": [
            "Response returns HTTP 202 (Accepted) with taskId",
            "Poll status at: GET /generation/:taskId/status",
            "Status responses: 'queued' (202), 'processing' (202), 'completed' (200), 'failed' (500), "
            "'not_found' (404)",
            "Completed tasks return result.generation.video with the video URL",
            "Monitor progress field (0-100) to track generation progress",
        ],
    },
}


def price_for(config: SandboxConfig, duration: int | float | None, surcharge: int = 0, model: str | None = None) -> int:
    """Atomic USDC for a video of ``duration`` seconds (default 8) of ``model`` (default: the default
    model), rounded up; never through float math.

    Never below zero, whatever ``price_change`` surcharges (they may be negative) add up to."""
    seconds = Decimal(str(DEFAULT_DURATION if duration is None else duration))
    offer = config.models.get(model or config.default_model)
    per_second = config.price_per_second if offer is None or offer.per_second is None else offer.per_second
    return max(0, math.ceil(seconds * per_second) + surcharge)


def output_schema(config: SandboxConfig) -> dict[str, Any]:
    """The spec's outputSchema with this sandbox's models (enum, default and, for people, the prices)."""
    schema = copy.deepcopy(OUTPUT_SCHEMA)
    video_model = schema["input"]["bodyFields"]["templateData"]["properties"]["videoModel"]
    video_model["enum"] = list(config.models)
    video_model["default"] = config.default_model
    video_model["pricing"] = {
        name: {
            "perSecond": str(config.price_per_second if offer.per_second is None else offer.per_second),
            **({"minDuration": offer.min_duration} if offer.min_duration is not None else {}),
            **({"maxDuration": offer.max_duration} if offer.max_duration is not None else {}),
        }
        for name, offer in config.models.items()
    }
    return schema


def requirement_dict(config: SandboxConfig, resource: str, amount: int) -> dict[str, Any]:
    """One entry of ``accepts``, key for key in the spec's order."""
    return {
        "scheme": "exact",
        "network": config.network,
        "maxAmountRequired": str(amount),
        "resource": resource,
        "description": DESCRIPTION,
        "mimeType": "",
        "payTo": config.pay_to,
        "maxTimeoutSeconds": config.max_timeout_seconds,
        "asset": config.asset,
        "outputSchema": output_schema(config),
        "extra": dict(config.extra),
    }


PAYMENT_IDENTIFIER_DECLARATION: dict[str, Any] = {
    "info": {"required": False},
    "schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "required": {"type": "boolean"},
            "id": {"type": "string", "minLength": 16, "maxLength": 128, "pattern": "^[a-zA-Z0-9_-]+$"},
        },
        "required": ["required"],
    },
}


def payment_required_v2(config: SandboxConfig, *, resource: str, amount: int, error: str) -> dict[str, Any]:
    """The JSON of a v2 ``PAYMENT-REQUIRED`` header: the same offer, CAIP-2 network, ``amount``."""
    entry = {
        "scheme": "exact",
        "network": caip2_of(config.network),
        "amount": str(amount),
        "asset": config.asset,
        "payTo": config.pay_to,
        "maxTimeoutSeconds": config.max_timeout_seconds,
        "extra": dict(config.extra),
        "outputSchema": output_schema(config),
    }
    info = {"url": resource, "description": DESCRIPTION, "mimeType": "application/json"}
    return encode_payment_required(
        [entry],
        resource=info,
        error=error,
        extensions={PAYMENT_IDENTIFIER: copy.deepcopy(PAYMENT_IDENTIFIER_DECLARATION)},
    )


def payment_required_body(config: SandboxConfig, *, resource: str, amount: int, error: str) -> dict[str, Any]:
    """The x402 v1 402 body the spec documents, for this server's resource URL and this payload's price."""
    return {
        "x402Version": X402_VERSION,
        "error": error,
        "accepts": [requirement_dict(config, resource, amount)],
    }


@dataclass(frozen=True)
class Verdict:
    """The outcome of verifying one payment: ``reason`` is an x402 error code when not ``valid``."""

    valid: bool
    reason: str | None = None
    payer: str | None = None


def _recover_signer(payment: PaymentPayload, requirement: PaymentRequirements) -> str | None:
    """The address that signed this authorization under the requirement's USDC domain, or None."""
    auth = payment.payload.authorization
    extra = requirement.extra or {}
    typed = {
        "types": TRANSFER_WITH_AUTHORIZATION,
        "primaryType": "TransferWithAuthorization",
        "domain": {
            "name": str(extra.get("name", "")),
            "version": str(extra.get("version", "")),
            "chainId": NETWORKS[requirement.network].chain_id,
            "verifyingContract": requirement.asset,
        },
        "message": {
            "from": auth.from_,
            "to": auth.to,
            "value": auth.value,
            "validAfter": auth.valid_after,
            "validBefore": auth.valid_before,
            "nonce": auth.nonce,
        },
    }
    try:
        signature = bytes.fromhex(payment.payload.signature.removeprefix("0x"))
    except ValueError:
        return None
    return recover_signer(typed, signature)


def verify_payment(
    payment: PaymentPayload,
    requirement: PaymentRequirements,
    *,
    config: SandboxConfig,
    now: float,
    nonce_used: Callable[[str, str], bool],
    balance_of: Callable[[str], int],
) -> Verdict:
    """Everything a facilitator checks before settling, in one place for create, /verify and /settle.

    Order: version, scheme, network, requirement sanity, signature, recipient, nonce, value, time
    window, funds. The nonce comes before value and time so that a settled header replayed later is
    recognised as what it is (``nonce_already_used``).
    """
    auth = payment.payload.authorization
    claimed = auth.from_
    expected = 2 if isinstance(payment, PaymentPayloadV2) else X402_VERSION  # the envelope it came in
    if payment.x402_version != expected:
        return Verdict(False, "invalid_x402_version", claimed)
    if payment.scheme != "exact" or requirement.scheme != "exact":
        return Verdict(False, "invalid_scheme", claimed)
    if payment.network != requirement.network or requirement.network != config.network:
        return Verdict(False, "invalid_network", claimed)
    if requirement.asset.lower() != config.asset.lower():
        return Verdict(False, "invalid_payment_requirements", claimed)
    signer = _recover_signer(payment, requirement)
    if signer is None or signer.lower() != claimed.lower():
        return Verdict(False, "invalid_exact_evm_payload_signature", claimed)
    if auth.to.lower() != requirement.pay_to.lower():
        return Verdict(False, "invalid_exact_evm_payload_recipient_mismatch", signer)
    if nonce_used(signer, auth.nonce):
        return Verdict(False, "nonce_already_used", signer)
    if int(auth.value) != requirement.amount:
        return Verdict(False, "invalid_exact_evm_payload_authorization_value", signer)
    if int(auth.valid_before) < now + MIN_VALID_BEFORE_MARGIN:
        return Verdict(False, "invalid_exact_evm_payload_authorization_valid_before", signer)
    if int(auth.valid_after) > now:
        return Verdict(False, "invalid_exact_evm_payload_authorization_valid_after", signer)
    if balance_of(signer) < int(auth.value):
        return Verdict(False, "insufficient_funds", signer)
    return Verdict(True, None, signer)


def settlement_transaction(payer: str, nonce: str) -> str:
    """A deterministic fake transaction hash: keccak256(nonce || payer)."""
    data = bytes.fromhex(nonce[2:]) + bytes.fromhex(payer[2:])
    return "0x" + keccak256(data).hex()
