"""The sandbox's HTTP surface: the Imagine API, an x402 facilitator, and admin endpoints for tests.

Routes parse their own input and call ``Sandbox``; fault handling is explicit at each step so the
order of events (what was charged before what failed) is visible in one place.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import re
from typing import Any, Literal

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from pydantic_core import from_json  # depth-capped: json.loads can overflow the C stack
from starlette.datastructures import UploadFile

from ..errors import ProtocolError
from ..models import (
    MAX_IMAGE_BYTES,
    CreateRequest,
    PaymentPayload,
    PaymentPayloadV2,
    PaymentRequirements,
    PaymentRequirementsV2,
    ResourceInfo,
    SettlementResponse,
    TemplateData,
)
from ..origin import SANDBOX_HEADER
from ..x402 import X402_VERSION, caip2_of, decode_payment_header, encode_payment_response, keccak256
from ..x402.v1 import b64json, unb64json
from ..x402.v2 import PAYMENT_IDENTIFIER, requirement_from_v2
from .config import Fault, SandboxConfig
from .paywall import DEFAULT_DURATION, payment_required_body, payment_required_v2
from .responses import (
    IN_PROCESS_HUGE_BYTES,
    REAL_HUGE_BYTES,
    DroppedResponse,
    bomb_response,
    html_error,
    huge_response,
    in_process,
)
from .rpc import answer_rpc
from .state import Job, Order, Sandbox

__all__ = ["create_app"]

MAX_JSON_BODY = MAX_IMAGE_BYTES * 4 // 3 + 64 * 1024  # a data-URL image plus the rest
MAX_MULTIPART_BODY = MAX_IMAGE_BYTES + 256 * 1024
_FILE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_-]{0,127})\.(mp4|png)$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_SEED = re.compile(r"^-?[0-9]{1,20}$")
_FORM_STRINGS = ("remixPostId", "rootRemixPostId", "remixToken")
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")

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


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message.encode("utf-8", "replace").decode("utf-8")}, status_code=status)


def _truncated(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    raw = json.dumps(body).encode()
    return Response(raw[: max(1, len(raw) // 2)], status_code=status, media_type="application/json", headers=headers)


def _as_html(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body).encode(), status_code=status, media_type="text/html", headers=headers)


# ----------------------------------------------------------------------------------- body parsing


def _explain(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "body"
        problems.append(f"{where}: {str(err['msg']).removeprefix('Value error, ')}")
    return "invalid request: " + "; ".join(problems)


def _order(data: dict[str, Any], *, upload: bytes | None = None, form: dict[str, str] | None = None) -> Order | str:
    """Validate a create body with the project's own model; a string result is the 400 reason."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError, TypeError, RecursionError):
        return "invalid request: the body contains text that is not valid Unicode"
    try:
        request = CreateRequest.model_validate(data)
    except ValidationError as exc:
        return _explain(exc)
    except (ValueError, TypeError, RecursionError):
        return "invalid request: the body does not match the create schema"
    template = request.template_data
    canonical = {  # templateData as object, as string, or absent (all defaults) hash the same
        "prompt": request.prompt,
        "templateData": (template or TemplateData()).model_dump(mode="json", by_alias=True, exclude_none=True),
        "upload": hashlib.sha256(upload).hexdigest() if upload is not None else None,
        "form": form or {},
    }
    digest = hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    duration = template.duration if template is not None else DEFAULT_DURATION
    model = template.video_model if template is not None else None
    clank = bool(template.auto_clank) if template is not None else False
    return Order(prompt=request.prompt, duration=duration, request_hash=digest, model=model, auto_clank=clank)


async def _parse_json(request: Request) -> Order | str:
    raw = await request.body()
    if len(raw) > MAX_JSON_BODY:
        return "request body is too large"
    try:
        data = from_json(raw)
    except (ValueError, RecursionError):
        return "the body is not valid JSON"
    if not isinstance(data, dict):
        return "the body must be a JSON object with a 'prompt'"
    return _order(data)


def _is_image(data: bytes) -> bool:
    return data.startswith(_IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


async def _parse_multipart(request: Request) -> Order | str:
    """The ElizaOS plugin's encoding: prompt, templateData (JSON string), image file, remix fields."""
    try:
        form = await request.form(max_files=4, max_fields=32)
    except Exception:  # starlette raises HTTPException or MultiPartException depending on the fault
        return "malformed multipart/form-data body"
    try:
        fields: dict[str, str] = {}
        upload: bytes | None = None
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key != "image":
                    return f"unexpected file field {key!r}: only 'image' may be a file"
                if upload is not None:
                    return "only one image file may be uploaded"
                upload = await value.read(MAX_IMAGE_BYTES + 1)
                if len(upload) > MAX_IMAGE_BYTES:
                    return f"image upload is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MiB"
                if not _is_image(upload):
                    return "image upload must be a PNG, JPEG, WebP or GIF file"
            elif key in fields:
                return f"field {key!r} was sent twice"
            else:
                fields[key] = value
    finally:
        await form.close()
    if "prompt" not in fields:
        return "invalid request: prompt: Field required"
    template: dict[str, Any] | None = None
    if "templateData" in fields:
        try:
            parsed = from_json(fields["templateData"])
        except (ValueError, RecursionError):
            return "invalid request: templateData: is a string but not JSON"
        if not isinstance(parsed, dict):
            return "invalid request: templateData: must be a JSON object"
        template = parsed
    if "soraVideoId" in fields:
        template = {**(template or {})}
        template.setdefault("soraVideoId", fields["soraVideoId"])
    if "image" in fields and upload is None:  # an image URL sent as a plain field
        template = {**(template or {})}
        template.setdefault("image", fields["image"])
    if "seed" in fields and not _SEED.match(fields["seed"]):
        return "invalid request: seed: must be an integer"
    for name in _FORM_STRINGS:
        if name in fields and (len(fields[name]) > 256 or not fields[name].isprintable()):
            return f"invalid request: {name}: must be printable text of at most 256 characters"
    extras = {k: v for k, v in fields.items() if k not in ("prompt", "templateData")}
    return _order({"prompt": fields["prompt"], "templateData": template}, upload=upload, form=extras)


async def parse_create(request: Request) -> Order | str:
    """JSON (templateData as object or string) or multipart; a string result is the 400 reason."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max(MAX_JSON_BODY, MAX_MULTIPART_BODY):
        return "request body is too large"
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        return await _parse_multipart(request)
    if ctype and ctype != "application/json" and not ctype.endswith("+json"):
        return f"unsupported content type {ctype!r}: send application/json or multipart/form-data"
    return await _parse_json(request)


def _decode_v1(header: str) -> PaymentPayload:
    """An ``X-PAYMENT`` read as v1 whatever version it claims, so a wrong one is named as such."""
    try:
        return PaymentPayload.model_validate(unb64json(header, "X-PAYMENT"))
    except ValidationError as exc:
        raise ProtocolError(f"X-PAYMENT is not an x402 v1 exact payment: {exc.errors()[0]['msg']}") from None


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


# -------------------------------------------------------------------------------------------- app


class _AnnounceSandbox:
    """Adds ``X-Imagine-Sandbox: 1`` to every answer (plain ASGI, so faults that drop connections stay as they are)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def announce(message: Any) -> None:
            if message["type"] == "http.response.start":
                header = (SANDBOX_HEADER.lower().encode(), b"1")
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        await self.app(scope, receive, announce)


def create_app(config: SandboxConfig | None = None) -> FastAPI:
    """A fresh sandbox app with its own state at ``app.state.sandbox``."""
    sandbox = Sandbox(config or SandboxConfig())
    app = FastAPI(title="Imagine API sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sandbox = sandbox
    if sandbox.config.announce_sandbox:
        app.add_middleware(_AnnounceSandbox)

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
            location = str(fault.param("location")) or str(
                request.url.replace(hostname="127.0.0.2")
            )
            return Response(status_code=status, headers={**headers, "location": location})
        return JSONResponse({"error": f"sandbox fault: HTTP {status} after payment", "taskId": task_id},
                            status_code=status, headers=headers)

    # ------------------------------------------------------------------------------------ create

    @app.post("/generation/create")
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
            return _error(400, f"invalid request: templateData.videoModel: {model!r} is not one of "
                               f"{', '.join(models)}")
        offer = models[model]
        if (offer.min_duration is not None and order.duration < offer.min_duration) or (
            offer.max_duration is not None and order.duration > offer.max_duration
        ):
            return _error(400, f"invalid request: templateData.duration: {model} makes videos of "
                               f"{offer.min_duration:g} to {offer.max_duration:g} seconds")
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
            pending = SettlementResponse(success=False, error_reason="settlement_pending", payer=settlement.payer,
                                         transaction=settlement.transaction, network=settlement.network)
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

    @app.get("/generation/{task_id}/status")
    async def status(task_id: str, request: Request) -> Response:
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

    @app.get("/media/{task_id}")
    async def media_page(task_id: str, request: Request) -> Response:
        """The public media page a rich result links to: the video, its first frame, its prompt."""
        job = sandbox.job(task_id)
        observed = sandbox.observe(task_id, peek=True) if job else None
        if job is None or observed is None or observed[1].status != "completed":
            return _error(404, "no finished video with this id")
        files = f"{_base(request)}/files/{job.task_id}"
        prompt = html.escape(job.prompt)
        page = (f"<!doctype html><title>{prompt}</title><h1>{prompt}</h1><p>{html.escape(job.model)}</p>"
                f'<video controls poster="{files}.png" src="{files}.mp4"></video>')
        return Response(page, media_type="text/html")

    # ------------------------------------------------------------------------------------- files

    @app.get("/files/{filename}")
    async def download(filename: str, request: Request) -> Response:
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

    # ------------------------------------------------------------------------------- facilitator

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

    @app.post("/verify")
    async def verify(request: Request) -> Response:
        parsed = await facilitator_input(request)
        if isinstance(parsed, JSONResponse):
            return parsed
        if isinstance(parsed, str):
            return JSONResponse({"isValid": False, "invalidReason": parsed, "payer": None})
        verdict = sandbox.verify(*parsed)
        return JSONResponse({"isValid": verdict.valid, "invalidReason": verdict.reason, "payer": verdict.payer})

    @app.post("/settle")
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

    @app.get("/supported")
    async def supported() -> Response:
        """Both versions' kinds, so an official v1 or v2 resource server can use this facilitator."""
        network = sandbox.config.network
        return JSONResponse({
            "kinds": [
                {"x402Version": X402_VERSION, "scheme": "exact", "network": network},
                {"x402Version": 2, "scheme": "exact", "network": caip2_of(network)},
            ],
            "extensions": [],
            "signers": {},
        })

    @app.post("/rpc")
    async def rpc(request: Request) -> Response:
        """Read-only chain view of the simulated USDC (authorizationState, balanceOf) for reconcile."""
        try:
            body = from_json(await request.body())
        except ValueError:
            return JSONResponse(answer_rpc(sandbox, None))
        return JSONResponse(answer_rpc(sandbox, body))

    # ------------------------------------------------------------------------------------- admin

    @app.get("/_admin/settlements")
    async def admin_settlements() -> Response:
        return JSONResponse([s.to_wire() for s in sandbox.settlements()])

    @app.get("/_admin/faults")
    async def admin_list_faults() -> Response:
        armed = [
            {**fault.model_dump(mode="json", by_alias=True, exclude_none=True), "remaining": remaining}
            for fault, remaining in sandbox.armed_faults()
        ]
        return JSONResponse({"faults": armed})

    @app.post("/_admin/faults")
    async def admin_faults(request: Request) -> Response:
        try:
            data = from_json(await request.body())
            items = data["faults"] if isinstance(data, dict) else data
            if not isinstance(items, list):
                raise ValueError("'faults' must be a list")
            sandbox.add_faults(items)
        except ValidationError as exc:
            return _error(400, f"invalid fault: {exc.errors()[0]['msg']}")
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            return _error(400, f'expected {{"faults": [...]}}: {exc}')
        return JSONResponse({"armed": len(sandbox.armed_faults())})

    @app.post("/_admin/fund")
    async def admin_fund(request: Request) -> Response:
        try:
            data = from_json(await request.body())
            address, amount = data["address"], data["amount"]
            if not isinstance(address, str) or not _ADDRESS.match(address):
                raise ValueError("address must be a 0x-prefixed 20-byte hex address")
            if isinstance(amount, str) and re.fullmatch(r"-?[0-9]{1,78}", amount):
                amount = int(amount)
            balance = sandbox.fund(address, amount)
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            return _error(400, f'expected {{"address": "0x…", "amount": <atomic units>}}: {exc}')
        return JSONResponse({"address": address, "balance": str(balance)})

    @app.get("/_admin/balances/{address}")
    async def admin_balance(address: str) -> Response:
        if not _ADDRESS.match(address):
            return _error(400, "address must be a 0x-prefixed 20-byte hex address")
        return JSONResponse({"address": address, "balance": str(sandbox.balance(address))})

    @app.post("/_admin/reset")
    async def admin_reset() -> Response:
        sandbox.reset()
        return JSONResponse({"reset": True})

    return app
