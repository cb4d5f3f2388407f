"""x402 on EVM, versions 1 and 2: the protocol only, no I/O.

- ``evm``: networks, USDC's EIP-712 domain, EIP-3009 ``TransferWithAuthorization`` signing, signers.
- ``v1``: the 402 body, ``X-PAYMENT``, ``X-PAYMENT-RESPONSE``.
- ``v2``: ``PAYMENT-REQUIRED``, ``PAYMENT-SIGNATURE`` (``accepted``/``resource``/``extensions`` echoed,
  ``payment-identifier``), ``PAYMENT-RESPONSE``, CAIP-2 networks.
- ``negotiate``: which version an answer speaks, signing in that version, reading receipts.
- ``types``: the wire models (402 bodies, requirements, payloads, receipts).

Every name this module exported before it became a package is still exported here.
"""

from __future__ import annotations

from .evm import (
    NETWORKS,
    TRANSFER_TYPES,
    VALID_AFTER_SKEW,
    Network,
    PrivateKeySigner,
    Signer,
    authorization_digest,
    build_authorization,
    caip2_of,
    keccak256,
    network_from_caip2,
    network_of,
    to_checksum_address,
    transfer_typed_data,
)
from .evm import _domain_separator as _domain_separator  # the devnet's USDC domain check
from .negotiate import (
    decode_payment_header,
    encode_payment_header,
    parse_402,
    payment_header_name,
    receipt_from,
    select_requirement,
    sign_payment,
    video_models,
)

# The x402 wire models (``types.py``), importable from here as from ``imagine_agent.models``.
from .types import ExactAuthorization as ExactAuthorization
from .types import ExactEvmPayload as ExactEvmPayload
from .types import OfferV2 as OfferV2
from .types import PaymentPayload as PaymentPayload
from .types import PaymentPayloadV2 as PaymentPayloadV2
from .types import PaymentRequired as PaymentRequired
from .types import PaymentRequiredV2 as PaymentRequiredV2
from .types import PaymentRequirements as PaymentRequirements
from .types import PaymentRequirementsV2 as PaymentRequirementsV2
from .types import ResourceInfo as ResourceInfo
from .types import SettlementResponse as SettlementResponse
from .types import VerifyResponse as VerifyResponse
from .v1 import (
    MAX_HEADER_CHARS,
    X402_VERSION,
    decode_payment_response,
    encode_payment_response,
    parse_payment_required,
)
from .v2 import payment_id_for, payment_id_of

__all__ = [
    "MAX_HEADER_CHARS",
    "NETWORKS",
    "TRANSFER_TYPES",
    "VALID_AFTER_SKEW",
    "X402_VERSION",
    "Network",
    "PrivateKeySigner",
    "Signer",
    "authorization_digest",
    "build_authorization",
    "caip2_of",
    "decode_payment_header",
    "decode_payment_response",
    "encode_payment_header",
    "encode_payment_response",
    "keccak256",
    "network_from_caip2",
    "network_of",
    "parse_402",
    "parse_payment_required",
    "payment_header_name",
    "payment_id_for",
    "payment_id_of",
    "receipt_from",
    "select_requirement",
    "sign_payment",
    "to_checksum_address",
    "transfer_typed_data",
    "video_models",
]
