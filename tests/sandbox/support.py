"""Helpers for the sandbox tests: a fake clock, and the client side of the 402 → sign → 202 dance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from imagine_agent.models import ExactEvmPayload, PaymentPayload, PaymentRequirements
from imagine_agent.x402 import (
    Signer,
    build_authorization,
    encode_payment_header,
    parse_payment_required,
    sign_payment,
    transfer_typed_data,
)

SPEC_402_FILE = Path(__file__).parents[1] / "payment-required.json"  # the spec's 402 body, kept in the repo
START = 1_800_000_000.0
BODY: dict[str, Any] = {
    "prompt": "A futuristic character waves in a neon cyberpunk city",
    "templateData": {"duration": 8, "autoClank": False, "autoEnhance": False},
}
CREATE = "/generation/create"


class FakeClock:
    """A clock tests move by hand: the sandbox computes every job's status from it."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def requirement_of(response: httpx.Response) -> PaymentRequirements:
    assert response.status_code == 402, response.text
    return parse_payment_required(response.json()).accepts[0]


def header_for(requirement: PaymentRequirements, signer: Signer, now: float, **changes: Any) -> str:
    """Sign ``requirement`` (with ``changes`` applied to it first, e.g. another price or payee)."""
    if changes:
        requirement = requirement.model_copy(update=changes)
    return encode_payment_header(sign_payment(requirement, signer, now=int(now)))


def forged_header(requirement: PaymentRequirements, victim: str, forger: Signer, now: float) -> str:
    """An authorization claiming ``victim`` as payer but signed by another key."""
    authorization = build_authorization(requirement, victim, now=int(now))
    signature = forger.sign_typed_data(transfer_typed_data(requirement, authorization))
    payment = PaymentPayload(
        network=requirement.network,
        payload=ExactEvmPayload(signature="0x" + signature.hex(), authorization=authorization),
    )
    return encode_payment_header(payment)


def spec_402() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SPEC_402_FILE.read_text())
    return data


async def quote(client: httpx.AsyncClient, body: dict[str, Any] | None = None) -> PaymentRequirements:
    return requirement_of(await client.post(CREATE, json=BODY if body is None else body))


async def pay(
    client: httpx.AsyncClient, signer: Signer, clock: FakeClock, body: dict[str, Any] | None = None
) -> tuple[httpx.Response, str]:
    """The whole paid create: quote, sign, resend. Returns the response and the header sent."""
    body = BODY if body is None else body
    header = header_for(await quote(client, body), signer, clock())
    return await client.post(CREATE, json=body, headers={"X-PAYMENT": header}), header
