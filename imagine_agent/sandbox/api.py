"""The Imagine API routes: create behind the x402 paywall, task status, media pages and file downloads.

Routes parse their own input and call ``Sandbox``; fault handling is explicit at each step so the
order of events (what was charged before what failed) is visible in one place.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from typing import Any, Literal

import anyio.to_thread
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import ProtocolError
from ..models import PaymentPayload, PaymentPayloadV2, PaymentRequirements, PaymentRequirementsV2, SettlementResponse
from ..x402 import caip2_of, decode_payment_header, encode_payment_response, keccak256
from ..x402.v1 import b64json, unb64json
from ..x402.v2 import PAYMENT_IDENTIFIER
from .config import Fault
from .parsing import parse_create
from .paywall import payment_required_body, payment_required_v2
from .responses import (
    IN_PROCESS_HUGE_BYTES,
    REAL_HUGE_BYTES,
    DroppedResponse,
    _as_html,
    _base,
    _error,
    _truncated,
    bomb_response,
    html_error,
    huge_response,
    in_process,
)
from .state import Job, Order, Sandbox

__all__ = ["api_routes"]

_FILE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_-]{0,127})\.(mp4|png)$")
SETTLE_PARAM = frozenset({"drop_after_payment", "status_after_payment", "oversized_answer", "compressed_bomb"})
CREATE_POST_SETTLE = frozenset(
    {
        "status_after_payment",
        "oversized_answer",
        "compressed_bomb",
        "settlement_pending",
        "error_after_settle",
        "drop_after_payment",
        "payment_required_after_settle",
        "malformed_json",
        "wrong_content_type",
    }
)


def _decode_v1(header: str) -> PaymentPayload:
    """An ``X-PAYMENT`` read as v1 whatever version it claims, so a wrong one is named as such."""
    try:
        return PaymentPayload.model_validate(unb64json(header, "X-PAYMENT"))
    except ValidationError as exc:
        raise ProtocolError(f"X-PAYMENT is not an x402 v1 exact payment: {exc.errors()[0]['msg']}") from None


def _accepted_matches(accepted: dict[str, Any], requirement: PaymentRequirements) -> bool:
    """A v2 payment's ``accepted`` names the offer this body gets (the price is checked with the signature)."""
    try:
        echoed = PaymentRequirementsV2.model_validate(accepted)
    except ValidationError:
        return False
    return (
        echoed.scheme == requirement.scheme
        and echoed.network == caip2_of(requirement.network)
        and echoed.asset.lower() == requirement.asset.lower()
        and echoed.pay_to.lower() == requirement.pay_to.lower()
    )


def _payment_id(payment: PaymentPayloadV2) -> str | None:
    declared = (payment.extensions or {}).get(PAYMENT_IDENTIFIER)
    info = declared.get("info") if isinstance(declared, dict) else None
    value = info.get("id") if isinstance(info, dict) else None
    return value if isinstance(value, str) else None


def _coin(job: Job, image: str, network: str) -> dict[str, Any]:
    """The Clanker coin autoClank deploys: a deterministic address; the paying wallet is its creator."""
    symbol = "".join(c for c in job.prompt.upper() if c.isalnum())[:5] or "VIDEO"
    return {
        "chain": network,
        "address": "0x" + keccak256(f"coin:{job.task_id}".encode())[-20:].hex(),
        "external": False,
        "creator": job.payer,
        "metadata": {"symbol": symbol, "name": job.prompt[:32], "image": image},
    }


def api_routes(sandbox: Sandbox) -> list[Route]:
    """The Imagine API over one sandbox state."""

    async def delay(path: str, task_id: str | None = None, *, paid: bool = False) -> None:
        fault = sandbox.take({"delay"}, path, task_id, when=lambda f: paid or not f.param("paid_only"))
        if fault is not None:
            await asyncio.sleep(float(fault.param("seconds")))

    def payment_required(
        resource: str, order: Order, error: str, receipt: SettlementResponse | None = None, version: int = 1
    ) -> JSONResponse:
        """A 402 in the versions this sandbox speaks: v1 in the body, v2 in ``PAYMENT-REQUIRED``."""
        amount = sandbox.price(order.duration, order.model)
        mode = sandbox.config.x402
        body: dict[str, Any] = {}
        headers: dict[str, str] = {}
        if mode in ("v1", "both"):
            body = payment_required_body(sandbox.config, resource=resource, amount=amount, error=error)
        if mode in ("v2", "both"):
            v2_error = "Payment required" if error == "X-PAYMENT header is required" else error
            required = payment_required_v2(sandbox.config, resource=resource, amount=amount, error=v2_error)
            headers["PAYMENT-REQUIRED"] = b64json(required)
        if receipt is not None:  # in the version of the payment it answers
            headers.update(receipt_headers(version, receipt))
        return JSONResponse(body, status_code=402, headers=headers)

    def payment_header(request: Request) -> tuple[str | None, int]:
        """The payment a request carries, and its version (a v2 server reads PAYMENT-SIGNATURE only)."""
        mode = sandbox.config.x402
        if mode in ("v2", "both") and request.headers.get("payment-signature"):
            return request.headers["payment-signature"], 2
        if mode in ("v1", "both") and request.headers.get("x-payment"):
            return request.headers["x-payment"], 1
        return None, 1

    def receipt_headers(version: int, receipt: SettlementResponse) -> dict[str, str]:
        if version == 2:
            receipt = receipt.model_copy(update={"network": caip2_of(sandbox.config.network)})
            return {"PAYMENT-RESPONSE": encode_payment_response(receipt)}
        return {"X-PAYMENT-RESPONSE": encode_payment_response(receipt)}

    def misanswer(fault: Fault, request: Request, task_id: str, headers: dict[str, str]) -> Response:
        """The answers a paid create must never take for a rejection (status_after_payment and kin)."""
        if fault.kind == "oversized_answer":
            pad = "x" * int(fault.param("bytes"))
            return JSONResponse({"taskId": task_id, "padding": pad}, status_code=202, headers=headers)
        if fault.kind == "compressed_bomb":
            return bomb_response(str(fault.param("encoding")), int(fault.param("bytes")), headers)
        status = int(fault.param("status"))
        if status == 204 or status == 304:
            return Response(status_code=status, headers=headers)
        if 300 <= status < 400:
            location = str(fault.param("location")) or str(request.url.replace(hostname="127.0.0.2"))
            return Response(status_code=status, headers={**headers, "location": location})
        return JSONResponse(
            {"error": f"sandbox fault: HTTP {status} after payment", "taskId": task_id},
            status_code=status,
            headers=headers,
        )

    # ------------------------------------------------------------------------------------ create

    async def create(request: Request) -> Response:
        response = await _create(request)
        await delay("create", paid=payment_header(request)[0] is not None)
        return response

    async def _create(request: Request) -> Response:
        order = await parse_create(request)
        if isinstance(order, str):
            return _error(400, order)
        models = sandbox.config.models
        model = order.model or sandbox.config.default_model
        if model not in models:
            return _error(400, f"invalid request: templateData.videoModel: {model!r} is not one of {', '.join(models)}")
        offer = models[model]
        if (offer.min_duration is not None and order.duration < offer.min_duration) or (
            offer.max_duration is not None and order.duration > offer.max_duration
        ):
            return _error(
                400,
                f"invalid request: templateData.duration: {model} makes videos of "
                f"{offer.min_duration:g} to {offer.max_duration:g} seconds",
            )
        resource = _base(request) + "/generation/create"
        header, version = payment_header(request)
        if not header:  # absent or empty, as x402 servers treat it
            return payment_required(resource, order, "X-PAYMENT header is required")

        before = sandbox.take(
            {"error_before_settle", "status_502_html"} | SETTLE_PARAM,
            "create",
            when=lambda f: f.kind not in SETTLE_PARAM or not f.param("settle"),
        )
        if before is not None:
            if before.kind == "drop_after_payment":
                return DroppedResponse(b'{"taskId": "00000000-0000-4000-8000-000000000000"}')
            if before.kind in SETTLE_PARAM:
                return misanswer(before, request, "00000000-0000-4000-8000-000000000000", {})
            return html_error(500 if before.kind == "error_before_settle" else 502)
        change = sandbox.take({"price_change"}, "create")
        if change is not None:
            sandbox.raise_price(int(change.param("amount")))

        try:
            payment = decode_payment_header(header) if version == 2 else _decode_v1(header)
        except ProtocolError:
            if version == 2:  # x402 v2: a malformed payment is a 400, nothing settled
                return _error(400, "invalid_payload: PAYMENT-SIGNATURE is not an x402 v2 exact payment")
            return payment_required(resource, order, "invalid_payment_header")
        if version == 2 and payment.x402_version != 2:
            return _error(400, f"invalid_x402_version: x402Version {payment.x402_version} in PAYMENT-SIGNATURE")
        requirement = sandbox.requirement(resource, sandbox.price(order.duration, order.model))
        if isinstance(payment, PaymentPayloadV2):
            if not _accepted_matches(payment.accepted, requirement):
                return payment_required(resource, order, "invalid_payment_requirements")
            payment_id = _payment_id(payment)
            if payment_id is not None and not sandbox.claim_payment_id(payment_id, payment.payload.signature):
                return _error(409, "payment-identifier already used with a different payment")
        outcome = sandbox.pay_and_create(payment, requirement, order)
        if outcome.settlement is None or outcome.job is None:
            return payment_required(resource, order, outcome.verdict.reason or "invalid_payment")

        settlement, job = outcome.settlement, outcome.job
        receipt = SettlementResponse(
            success=True, transaction=settlement.transaction, network=settlement.network, payer=settlement.payer
        )
        headers = receipt_headers(version, receipt)
        body = {"taskId": job.task_id}
        after = sandbox.take(
            CREATE_POST_SETTLE,
            "create",
            job.task_id,
            when=lambda f: f.kind not in SETTLE_PARAM or bool(f.param("settle")),
        )
        if after is None:
            return JSONResponse(body, status_code=202, headers=headers)
        if after.kind == "error_after_settle":
            return html_error(500)
        if after.kind == "drop_after_payment":
            return DroppedResponse(json.dumps(body).encode())
        if after.kind == "payment_required_after_settle":
            return payment_required(resource, order, str(after.param("error")))
        if after.kind in SETTLE_PARAM:
            return misanswer(after, request, job.task_id, headers)
        if after.kind == "settlement_pending":
            pending = SettlementResponse(
                success=False,
                error_reason="settlement_pending",
                payer=settlement.payer,
                transaction=settlement.transaction,
                network=settlement.network,
            )
            return payment_required(resource, order, "settlement_pending", receipt=pending, version=version)
        if after.kind == "malformed_json":
            return _truncated(body, 202, headers)
        return _as_html(body, 202, headers)  # wrong_content_type

    # ------------------------------------------------------------------------------------ status

    def status_body(job: Job, base: str) -> tuple[int, dict[str, Any]]:
        observed = sandbox.observe(job.task_id)
        assert observed is not None
        _, obs = observed
        if obs.status == "queued":
            return 202, {"status": "queued"}
        if obs.status == "processing":
            if sandbox.config.rich_results:
                return 202, {"status": "processing", "metadata": {"percent": obs.progress}}
            return 202, {"status": "processing", "progress": obs.progress}
        if obs.status == "failed":
            return 500, {"status": "failed", "error": obs.error}
        files = f"{base}/files/{job.task_id}"
        video = (
            f"http://127.0.0.1:{sandbox.closed_port()}/files/{job.task_id}.mp4"
            if job.unreachable_video
            else files + ".mp4"
        )
        result: dict[str, Any] = {
            "generation": {
                "text": f"A {job.duration}-second {job.model} video of: {job.prompt}",
                "image": files + ".png",
                "video": video if sandbox.config.rich_results else {"url": video},
                "templateName": "video",
                "agentId": sandbox.agent_id,
            },
            "templateData": {"duration": job.duration},
        }
        if sandbox.config.rich_results:
            result["templateData"]["videoModel"] = job.model
            result["url"] = f"{base}/media/{job.task_id}"
            if job.transaction:
                result["txHash"] = job.transaction
            if job.auto_clank:
                result["token"] = _coin(job, files + ".png", sandbox.config.network)
        return 200, {"status": "completed", "result": result}

    async def status(request: Request) -> Response:
        task_id: str = request.path_params["task_id"]
        response = _status(task_id, request)
        await delay("status", task_id)
        return response

    def _status(task_id: str, request: Request) -> Response:
        first = sandbox.take({"status_502_html", "not_found"}, "status", task_id)
        if first is not None:
            return html_error(502) if first.kind == "status_502_html" else JSONResponse({"status": "not_found"}, 404)
        job = sandbox.job(task_id)
        if job is None:
            return JSONResponse({"status": "not_found"}, status_code=404)
        code, body = status_body(job, _base(request))
        shaped = sandbox.take({"malformed_json", "wrong_content_type"}, "status", task_id)
        if shaped is None:
            return JSONResponse(body, status_code=code)
        return _truncated(body, code) if shaped.kind == "malformed_json" else _as_html(body, code)

    async def media_page(request: Request) -> Response:
        """The public media page a rich result links to: the video, its first frame, its prompt."""
        task_id: str = request.path_params["task_id"]
        job = sandbox.job(task_id)
        observed = sandbox.observe(task_id, peek=True) if job else None
        if job is None or observed is None or observed[1].status != "completed":
            return _error(404, "no finished video with this id")
        files = f"{_base(request)}/files/{job.task_id}"
        prompt = html.escape(job.prompt)
        page = (
            f"<!doctype html><title>{prompt}</title><h1>{prompt}</h1><p>{html.escape(job.model)}</p>"
            f'<video controls poster="{files}.png" src="{files}.mp4"></video>'
        )
        return Response(page, media_type="text/html")

    # ------------------------------------------------------------------------------------- files

    async def download(request: Request) -> Response:
        filename: str = request.path_params["filename"]
        match = _FILE.match(filename)
        task_id = match.group(1) if match else None
        response = await _download(match, request)
        await delay("download", task_id)
        return response

    async def _download(match: re.Match[str] | None, request: Request) -> Response:
        task_id = match.group(1) if match else None
        first = sandbox.take({"status_502_html", "not_found"}, "download", task_id)
        if first is not None:
            return html_error(502) if first.kind == "status_502_html" else _error(404, "file not found")
        job = sandbox.job(task_id) if task_id else None
        observed = sandbox.observe(job.task_id, peek=True) if job else None
        if match is None or job is None or observed is None or observed[1].status != "completed":
            return _error(404, "file not found (the task does not exist or is not completed)")
        ext: Literal["mp4", "png"] = "mp4" if match.group(2) == "mp4" else "png"
        media_type = "video/mp4" if ext == "mp4" else "image/png"
        shaped = sandbox.take({"huge_download", "wrong_content_type"}, "download", job.task_id)
        if shaped is not None and shaped.kind == "huge_download":
            size = shaped.param("bytes")
            if size is None:
                size = IN_PROCESS_HUGE_BYTES if in_process(request.scope) else REAL_HUGE_BYTES
            return huge_response(int(size), content_length=bool(shaped.param("content_length")), media_type=media_type)
        data = await anyio.to_thread.run_sync(sandbox.media, job, ext)
        return Response(data, media_type="text/html" if shaped is not None else media_type)

    return [
        Route("/generation/create", create, methods=["POST"]),
        Route("/generation/{task_id}/status", status, methods=["GET"]),
        Route("/media/{task_id}", media_page, methods=["GET"]),
        Route("/files/{filename}", download, methods=["GET"]),
    ]
