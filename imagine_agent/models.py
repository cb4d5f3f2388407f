"""Pydantic models of the Imagine wire format: the create request, task status and results.

Field names are snake_case in Python and camelCase on the wire. Unknown fields are kept, so a body
parsed and dumped with ``by_alias=True, exclude_unset=True`` comes back as it arrived.

The x402 wire models live in ``x402/types.py`` and the input checks in ``inputs.py``; both are
re-exported here, where they were always read from.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
)
from pydantic_core import from_json

from .errors import InvalidRequestError
from .inputs import _TASK_ID, _validate_image
from .inputs import IMAGE_MIME_TYPES as IMAGE_MIME_TYPES
from .inputs import MAX_IMAGE_BYTES as MAX_IMAGE_BYTES
from .inputs import ImageFile as ImageFile
from .inputs import check_image_host as check_image_host
from .inputs import is_private_host as is_private_host
from .inputs import sniff_image_type as sniff_image_type
from .inputs import validate_task_id as validate_task_id
from .limits import MAX_DURATION as MAX_DURATION  # re-exported: these names were always read from here
from .limits import MAX_PROMPT_CHARS as MAX_PROMPT_CHARS
from .limits import MIN_DURATION as MIN_DURATION
from .wire import WireModel as WireModel
from .x402.types import ExactAuthorization as ExactAuthorization
from .x402.types import ExactEvmPayload as ExactEvmPayload
from .x402.types import OfferV2 as OfferV2
from .x402.types import PaymentPayload as PaymentPayload
from .x402.types import PaymentPayloadV2 as PaymentPayloadV2
from .x402.types import PaymentRequired as PaymentRequired
from .x402.types import PaymentRequiredV2 as PaymentRequiredV2
from .x402.types import PaymentRequirements as PaymentRequirements
from .x402.types import PaymentRequirementsV2 as PaymentRequirementsV2
from .x402.types import ResourceInfo as ResourceInfo
from .x402.types import SettlementResponse as SettlementResponse
from .x402.types import VerifyResponse as VerifyResponse

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

_VIDEO_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")
_SORA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")


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
