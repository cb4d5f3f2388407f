"""Reading a create request: JSON (``templateData`` as an object or a string) or multipart with an image
upload, size-capped; the result is an ``Order`` or the reason for a 400."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from pydantic import ValidationError
from pydantic_core import from_json  # depth-capped: json.loads can overflow the C stack
from starlette.datastructures import UploadFile
from starlette.requests import Request

from ..models import MAX_IMAGE_BYTES, CreateRequest, TemplateData
from .paywall import DEFAULT_DURATION
from .state import Order

__all__ = ["parse_create"]

MAX_JSON_BODY = MAX_IMAGE_BYTES * 4 // 3 + 64 * 1024  # a data-URL image plus the rest
MAX_MULTIPART_BODY = MAX_IMAGE_BYTES + 256 * 1024
_SEED = re.compile(r"^-?[0-9]{1,20}$")
_FORM_STRINGS = ("remixPostId", "rootRemixPostId", "remixToken")
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")


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
