"""The x402 facilitator routes (``/verify``, ``/settle``, ``/supported``, v1 and v2) and the read-only
chain view (``/rpc``) reconcile asks."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import from_json  # depth-capped: json.loads can overflow the C stack
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import ProtocolError
from ..models import PaymentPayload, PaymentPayloadV2, PaymentRequirements, PaymentRequirementsV2, ResourceInfo
from ..x402 import X402_VERSION, caip2_of, decode_payment_header
from ..x402.v1 import b64json
from ..x402.v2 import requirement_from_v2
from .responses import _error
from .rpc import answer_rpc
from .state import Sandbox

__all__ = ["facilitator_routes"]


def _facilitator_v2(data: dict[str, Any]) -> tuple[PaymentPayload, PaymentRequirements] | str:
    """A v2 ``/verify`` or ``/settle`` body: requirements by CAIP-2 network, the payload as an object."""
    raw = data.get("paymentPayload")
    try:
        parsed = PaymentRequirementsV2.model_validate(data.get("paymentRequirements"))
    except ValidationError:
        try:
            PaymentRequirements.model_validate(data.get("paymentRequirements"))
        except ValidationError:
            return "invalid_payment_requirements"
        return "invalid_x402_version"  # v1 requirements in a body that says version 2
    if not isinstance(raw, str | dict):
        return "invalid_payload"
    try:
        payment = decode_payment_header(raw if isinstance(raw, str) else b64json(raw))
    except (ProtocolError, TypeError, ValueError):
        return "invalid_payload"
    if not isinstance(payment, PaymentPayloadV2):
        return "invalid_x402_version"
    resource = payment.resource or {}
    try:
        info = ResourceInfo.model_validate(resource) if resource else None
    except ValidationError:
        info = None
    return payment, requirement_from_v2(parsed, info)


def facilitator_routes(sandbox: Sandbox) -> list[Route]:
    """The facilitator over one sandbox state."""

    async def facilitator_input(request: Request) -> tuple[PaymentPayload, PaymentRequirements] | str | JSONResponse:
        try:
            data = from_json(await request.body())
        except (ValueError, RecursionError):
            return _error(400, "the body is not valid JSON")
        if not isinstance(data, dict):
            return _error(400, "the body must be {x402Version, paymentPayload, paymentRequirements}")
        version = data.get("x402Version", X402_VERSION)
        if version == 2:
            return _facilitator_v2(data)
        if version != X402_VERSION:
            return "invalid_x402_version"
        try:
            requirement = PaymentRequirements.model_validate(data.get("paymentRequirements"))
        except ValidationError:
            return "invalid_payment_requirements"
        raw = data.get("paymentPayload")
        try:
            payment = decode_payment_header(raw) if isinstance(raw, str) else PaymentPayload.model_validate(raw)
        except (ValidationError, ProtocolError):
            return "invalid_payload"
        return payment, requirement

    async def verify(request: Request) -> Response:
        parsed = await facilitator_input(request)
        if isinstance(parsed, JSONResponse):
            return parsed
        if isinstance(parsed, str):
            return JSONResponse({"isValid": False, "invalidReason": parsed, "payer": None})
        verdict = sandbox.verify(*parsed)
        return JSONResponse({"isValid": verdict.valid, "invalidReason": verdict.reason, "payer": verdict.payer})

    async def settle(request: Request) -> Response:
        parsed = await facilitator_input(request)
        if isinstance(parsed, JSONResponse):
            return parsed
        network = sandbox.config.network
        if isinstance(parsed, str):
            body = {"success": False, "errorReason": parsed, "transaction": "", "network": network, "payer": None}
            return JSONResponse(body)
        verdict, settlement = sandbox.settle(*parsed)
        payment = parsed[0]
        network = caip2_of(payment.network) if payment.x402_version == 2 else payment.network
        return JSONResponse(
            {
                "success": settlement is not None,
                "errorReason": verdict.reason,
                "transaction": settlement.transaction if settlement else "",
                "network": network,
                "payer": verdict.payer,
            }
        )

    async def supported(request: Request) -> Response:
        """Both versions' kinds, so an official v1 or v2 resource server can use this facilitator."""
        network = sandbox.config.network
        return JSONResponse(
            {
                "kinds": [
                    {"x402Version": X402_VERSION, "scheme": "exact", "network": network},
                    {"x402Version": 2, "scheme": "exact", "network": caip2_of(network)},
                ],
                "extensions": [],
                "signers": {},
            }
        )

    async def rpc(request: Request) -> Response:
        """Read-only chain view of the simulated USDC (authorizationState, balanceOf) for reconcile."""
        try:
            body = from_json(await request.body())
        except ValueError:
            return JSONResponse(answer_rpc(sandbox, None))
        return JSONResponse(answer_rpc(sandbox, body))

    return [
        Route("/verify", verify, methods=["POST"]),
        Route("/settle", settle, methods=["POST"]),
        Route("/supported", supported, methods=["GET"]),
        Route("/rpc", rpc, methods=["POST"]),
    ]
