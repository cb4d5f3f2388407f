"""Pydantic models of the Imagine wire format and of x402 v1.

Field names are snake_case in Python and camelCase on the wire. Unknown fields are kept, so a body
parsed and dumped with ``by_alias=True, exclude_unset=True`` comes back as it arrived.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import math
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import from_json

from .errors import InvalidRequestError
from .limits import MAX_DURATION as MAX_DURATION  # re-exported: these names were always read from here
from .limits import MAX_PROMPT_CHARS as MAX_PROMPT_CHARS
from .limits import MIN_DURATION as MIN_DURATION

__all__ = [
    "MAX_IMAGE_BYTES",
    "MAX_PROMPT_CHARS",
    "CreateRequest",
    "ExactAuthorization",
    "ExactEvmPayload",
    "Generation",
    "GenerationResult",
    "ImageFile",
    "OfferV2",
    "PaymentPayload",
    "PaymentPayloadV2",
    "PaymentRequired",
    "PaymentRequiredV2",
    "PaymentRequirements",
    "PaymentRequirementsV2",
    "ResourceInfo",
    "SettlementResponse",
    "TaskCreated",
    "TaskState",
    "TaskStatus",
    "TemplateData",
    "TokenInfo",
    "TokenMetadata",
    "VerifyResponse",
    "VideoRef",
    "check_image_host",
    "is_private_host",
    "validate_task_id",
]

MAX_IMAGE_BYTES = 10 * 1024 * 1024
_VIDEO_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")
IMAGE_MIME_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")

_TASK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_SORA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_UINT = re.compile(r"^[0-9]{1,78}$")
_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$")


class WireModel(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown fields kept."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


# ---------------------------------------------------------------------------------------------- inputs


def validate_task_id(task_id: str) -> str:
    """Task ids go into URL paths: allow only the characters an id can have."""
    if not isinstance(task_id, str) or not _TASK_ID.match(task_id):
        raise InvalidRequestError(
            f"invalid task id {task_id!r}: expected the id returned by create (letters, digits, '-', '_')"
        )
    return task_id


def _validate_image(value: str) -> str:
    if value.startswith("data:"):
        header, sep, data = value.partition(",")
        if not sep or not header.endswith(";base64"):
            raise ValueError("a data URL image must look like data:image/png;base64,<data>")
        mime = header[5:-7].lower()
        if mime not in IMAGE_MIME_TYPES:
            raise ValueError(f"data URL mime type {mime!r} is not an image type ({', '.join(IMAGE_MIME_TYPES)})")
        if len(data) > MAX_IMAGE_BYTES * 4 // 3 + 4:
            raise ValueError(f"image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MiB")
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("data URL image is not valid base64") from None
        if not raw:
            raise ValueError("data URL image is empty")
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("image must be an http(s):// URL, a data:image/...;base64 URL, or a local file path")
    if len(value) > 4096:
        raise ValueError("image URL is longer than 4096 characters")
    return value


def _host_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names, including the legacy IPv4 forms resolvers still accept (127.1,
    2130706433, 0x7f.0.0.1, 0177.0.0.1), which ``ipaddress`` refuses to parse."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def is_private_host(host: str) -> bool:
    """A loopback, private, link-local or local-only name or address (no DNS lookup)."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    ip = _host_ip(host.strip("[]"))
    return ip is not None and (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_unspecified
    )


def check_image_host(image: str, *, allow_private: bool) -> None:
    """Refuse image URLs the remote server cannot fetch (loopback, private, link-local), unless allowed."""
    if allow_private or image.startswith("data:"):
        return
    host = (urlsplit(image).hostname or "").lower().rstrip(".")
    if is_private_host(host):
        raise InvalidRequestError(
            f"image URL host {host!r} is a local or private address the video server cannot reach; "
            "use a public URL, a data URL or a local file path (or allow private image URLs in the config)"
        )


_MAGIC = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF87a": "image/gif",
          b"GIF89a": "image/gif"}


def sniff_image_type(content: bytes) -> str | None:
    """The image mime type from the first bytes, or None when it is not an image we accept."""
    for magic, mime in _MAGIC.items():
        if content.startswith(magic):
            return mime
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return None


@dataclass(frozen=True)
class ImageFile:
    """A local image for image-to-video, sent as a multipart upload."""

    filename: str
    content: bytes
    mime: str

    @classmethod
    def from_path(cls, path: str | Path) -> ImageFile:
        p = Path(path).expanduser()
        if not p.is_file():
            raise InvalidRequestError(f"image file {str(p)!r} does not exist")
        size = p.stat().st_size
        if size == 0 or size > MAX_IMAGE_BYTES:
            limit = MAX_IMAGE_BYTES // 2**20
            raise InvalidRequestError(f"image file must be 1 byte to {limit} MiB; it is {size} bytes")
        content = p.read_bytes()
        mime = sniff_image_type(content)
        if mime is None:
            raise InvalidRequestError(f"{p.name} is not a PNG, JPEG, WebP or GIF image")
        return cls(p.name, content, mime)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def __repr__(self) -> str:
        return f"ImageFile({self.filename!r}, {len(self.content)} bytes, {self.mime})"


class TemplateData(WireModel):
    """Optional generation settings (``templateData`` on the wire)."""

    # Any model the server sells (its live 402 lists them); None: not sent, so the server's default.
    video_model: str | None = None
    sora_video_id: str | None = None
    duration: StrictInt | StrictFloat = 8
    auto_clank: bool = False
    auto_enhance: bool = False
    image: str | None = None

    @field_validator("duration")
    @classmethod
    def _duration(cls, v: int | float) -> int | float:
        if isinstance(v, bool) or not math.isfinite(v) or not MIN_DURATION <= v <= MAX_DURATION:
            raise ValueError(f"duration must be a number of seconds from {MIN_DURATION} to {MAX_DURATION}")
        return int(v) if isinstance(v, float) and v.is_integer() else v

    @field_validator("video_model")
    @classmethod
    def _video_model(cls, v: str | None) -> str | None:
        if v is not None and not _VIDEO_MODEL.match(v):
            raise ValueError("videoModel must be a model name the server lists (letters, digits, . _ : / -)")
        return v

    @field_validator("image")
    @classmethod
    def _image(cls, v: str | None) -> str | None:
        return None if v is None else _validate_image(v)

    @field_validator("sora_video_id")
    @classmethod
    def _sora_id(cls, v: str | None) -> str | None:
        if v is not None and not _SORA_ID.match(v):
            raise ValueError("soraVideoId must be the id of an earlier Sora video (letters, digits, - _ . :)")
        return v


def _template_data_from_wire(value: Any) -> Any:
    """The spec allows templateData as an object or as a JSON string of one."""
    if isinstance(value, str):
        try:
            value = from_json(value)  # depth-capped, unlike json.loads (see flows._json)
        except ValueError:
            raise ValueError("templateData is a string but not JSON") from None
        if not isinstance(value, dict):
            raise ValueError("templateData must be a JSON object")
    return value


class CreateRequest(WireModel):
    """The body of ``POST /generation/create``."""

    prompt: str
    template_data: Annotated[TemplateData | None, BeforeValidator(_template_data_from_wire)] = None

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("prompt is empty: describe the video to make")
        if len(v) > MAX_PROMPT_CHARS:
            raise ValueError(f"prompt is {len(v)} characters; the limit is {MAX_PROMPT_CHARS}")
        if any(ord(c) < 32 and c not in "\n\t\r" for c in v):
            raise ValueError("prompt contains control characters")
        return v

    @classmethod
    def build(cls, prompt: str, **template: Any) -> CreateRequest:
        """Validate user input into a request, raising ``InvalidRequestError`` with every problem named."""
        fields = {k: v for k, v in template.items() if v is not None}
        try:
            return cls(prompt=prompt, template_data=TemplateData(**fields) if fields else None)
        except ValidationError as exc:
            raise InvalidRequestError(_explain(exc)) from None

    def body(self, *, template_data_as_string: bool = True) -> dict[str, Any]:
        """The JSON body; templateData as a JSON string, as the spec's outputSchema says, by default."""
        wire = self.to_wire()
        if self.template_data is not None:
            td = self.template_data.model_dump(mode="json", by_alias=True, exclude_none=True)
            wire["templateData"] = json.dumps(td, separators=(",", ":")) if template_data_as_string else td
        return wire


def _explain(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "request"
        msg = str(err["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {msg}")
    return "invalid request: " + "; ".join(problems)


# -------------------------------------------------------------------------------------------- x402 v1


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


# -------------------------------------------------------------------------------------------- tasks

TaskState = Literal["queued", "processing", "completed", "failed", "not_found"]


class TaskCreated(WireModel):
    task_id: Annotated[str, Field(pattern=_TASK_ID.pattern)]


class VideoRef(WireModel):
    url: str


class TokenMetadata(WireModel):
    symbol: str | None = None
    name: str | None = None
    image: str | None = None


class TokenInfo(WireModel):
    """The coin deployed for a video (autoClank); ``external``: the token existed before this video."""

    chain: str | int | None = None
    address: str | None = None
    external: bool = False
    metadata: TokenMetadata | None = None

    @property
    def symbol(self) -> str | None:
        return self.metadata.symbol if self.metadata else None


class Generation(WireModel):
    text: str | None = None
    image: str | None = None
    video: VideoRef | str | None = None  # ``{url}`` (the seed spec) or a plain URL (today's API)
    template_name: str | None = None
    agent_id: str | None = None


class GenerationResult(WireModel):
    generation: Generation | None = None
    template_data: dict[str, Any] | None = None
    url: str | None = None  # the public media page
    token: TokenInfo | None = None
    tx_hash: str | None = None


def _percent(metadata: Any) -> int | float | None:
    value = metadata.get("percent") if isinstance(metadata, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return value
    return None


class TaskStatus(WireModel):
    """The body of ``GET /generation/{taskId}/status``, in the seed spec's shape or today's."""

    status: TaskState
    progress: int | float | None = None
    result: GenerationResult | None = None
    url: str | None = None
    token: TokenInfo | None = None
    tx_hash: str | None = None
    error: Any = None
    metadata: dict[str, Any] | None = None

    def model_post_init(self, context: Any, /) -> None:
        if self.progress is None and (percent := _percent(self.metadata)) is not None:
            object.__setattr__(self, "progress", percent)  # not marked as set: the wire stays as it came

    @property
    def done(self) -> bool:
        return self.status in ("completed", "failed", "not_found")

    @property
    def video_url(self) -> str | None:
        gen = self.result.generation if self.result else None
        video = gen.video if gen else None
        return video if isinstance(video, str) else (video.url if video is not None else None)

    @property
    def preview_url(self) -> str | None:
        gen = self.result.generation if self.result else None
        return gen.image if gen else None

    @property
    def media_url(self) -> str | None:
        """The public media page (``result.url``, or a top-level ``url``)."""
        return (self.result.url if self.result else None) or self.url

    @property
    def coin(self) -> TokenInfo | None:
        """The coin deployed for this video, if any (``result.token`` or a top-level ``token``)."""
        token = (self.result.token if self.result else None) or self.token
        return token if token is not None and token.address else None

    @property
    def transaction(self) -> str | None:
        return (self.result.tx_hash if self.result else None) or self.tx_hash
