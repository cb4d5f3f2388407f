"""The x402 wire models, versions 1 and 2: 402 bodies, requirements, payloads, receipts.

A v2 requirement is parsed into the v1 shape (``PaymentRequirements``) with what v2 must echo kept
aside (``OfferV2``). ``imagine_agent.models`` and ``imagine_agent.x402`` re-export every name here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PrivateAttr

from ..wire import WireModel

__all__ = [
    "Address",
    "ExactAuthorization",
    "ExactEvmPayload",
    "OfferV2",
    "PaymentPayload",
    "PaymentPayloadV2",
    "PaymentRequired",
    "PaymentRequiredV2",
    "PaymentRequirements",
    "PaymentRequirementsV2",
    "ResourceInfo",
    "SettlementResponse",
    "UintString",
    "VerifyResponse",
]

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_UINT = re.compile(r"^[0-9]{1,78}$")
_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")


def _address(v: str) -> str:
    if not isinstance(v, str) or not _ADDRESS.match(v):
        raise ValueError("not a 0x-prefixed 20-byte hex address")
    return v


def _uint_string(v: Any) -> str:
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return str(v)
    if not isinstance(v, str) or not _UINT.match(v):
        raise ValueError("not a non-negative integer in a decimal string")
    return v


Address = Annotated[str, BeforeValidator(_address)]
UintString = Annotated[str, BeforeValidator(_uint_string)]


@dataclass(frozen=True)
class OfferV2:
    """What an x402 v2 payment must echo besides the signature: the requirement exactly as offered,
    the 402's ``resource`` and ``extensions``, and the ``payment-identifier`` id we chose (if offered)."""

    accepted: dict[str, Any]
    resource: dict[str, Any] | None = None
    extensions: dict[str, Any] | None = None
    payment_id: str | None = None


class PaymentRequirements(WireModel):
    """One way to pay, from the ``accepts`` list of a 402 body.

    A v2 requirement is parsed into this same shape (network by our name, ``amount`` as
    ``maxAmountRequired``, ``resource.url`` as ``resource``), so policy, ledger and signing read one
    field for the price; ``v2`` keeps what the v2 envelope must echo.
    """

    _v2: OfferV2 | None = PrivateAttr(default=None)

    scheme: str
    network: str
    max_amount_required: UintString
    resource: str
    description: str = ""
    mime_type: str = ""
    pay_to: Address
    max_timeout_seconds: int = Field(ge=1, le=86_400)
    asset: Address
    output_schema: dict[str, Any] | None = None
    extra: dict[str, Any] | None = None

    @property
    def amount(self) -> int:
        """The price in atomic units (USDC has 6 decimals)."""
        return int(self.max_amount_required)

    @property
    def v2(self) -> OfferV2 | None:
        return self._v2

    @property
    def x402_version(self) -> int:
        return 1 if self._v2 is None else 2

    def with_v2(self, offer: OfferV2 | None) -> PaymentRequirements:
        copy = self.model_copy()
        copy._v2 = offer
        return copy


class PaymentRequired(WireModel):
    """The body of an x402 v1 ``402 Payment Required`` answer, or a v2 answer parsed into the same shape."""

    x402_version: int
    error: str = ""
    accepts: list[PaymentRequirements] = Field(default_factory=list)


class ResourceInfo(WireModel):
    """x402 v2: what the payment is for (``resource`` of a 402 and of a payment)."""

    url: str
    description: str = ""
    mime_type: str = ""


class PaymentRequirementsV2(WireModel):
    """One entry of a v2 ``accepts`` list: CAIP-2 network, ``amount``, no resource of its own."""

    scheme: str
    network: str
    amount: UintString
    asset: Address
    pay_to: Address
    max_timeout_seconds: int = Field(ge=1, le=86_400)
    extra: dict[str, Any] | None = None


class PaymentRequiredV2(WireModel):
    """What a v2 ``PAYMENT-REQUIRED`` header carries (base64 of its JSON)."""

    x402_version: Literal[2]
    error: str | None = None
    resource: ResourceInfo | None = None
    accepts: list[PaymentRequirementsV2] = Field(default_factory=list)
    extensions: dict[str, Any] | None = None


class ExactAuthorization(WireModel):
    """EIP-3009 ``TransferWithAuthorization`` message; numbers as decimal strings."""

    from_: Address = Field(alias="from")
    to: Address
    value: UintString
    valid_after: UintString
    valid_before: UintString
    nonce: Annotated[str, Field(pattern=_HEX32.pattern)]


class ExactEvmPayload(WireModel):
    signature: Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{130}$")]
    authorization: ExactAuthorization


class PaymentPayload(WireModel):
    """What ``X-PAYMENT`` carries (base64 of its compact JSON)."""

    x402_version: int = 1
    scheme: str = "exact"
    network: str
    payload: ExactEvmPayload


class PaymentPayloadV2(PaymentPayload):
    """What ``PAYMENT-SIGNATURE`` carries: the same signed payload, the chosen requirement echoed as
    offered (``accepted``), the 402's ``resource`` and ``extensions``. No top-level scheme or network:
    ``network`` here is our name of ``accepted.network``, kept off the wire."""

    x402_version: int = 2
    network: str = ""
    accepted: dict[str, Any]
    resource: dict[str, Any] | None = None
    extensions: dict[str, Any] | None = None

    def to_wire(self) -> dict[str, Any]:
        wire = self.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude={"scheme", "network"})
        return {k: v for k, v in wire.items() if v is not None}


class SettlementResponse(WireModel):
    """What ``X-PAYMENT-RESPONSE`` carries, and what a facilitator's ``/settle`` returns."""

    success: bool
    transaction: str = ""
    network: str = ""
    payer: str | None = None
    error_reason: str | None = None


class VerifyResponse(WireModel):
    is_valid: bool
    invalid_reason: str | None = None
    payer: str | None = None
