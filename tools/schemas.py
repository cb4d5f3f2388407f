"""Argument schemas of the video tools, and how the operator's policy turns arguments into a request.

The schemas are what the model sees. None of them has a field for a price, a cap, a payee or a key
(money-safety rule 5): unknown arguments are rejected, so a model cannot even try. ``runtime`` is
injected by LangChain (``ToolRuntime``) and left out of the schema the model is shown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from langchain_core.tools import InjectedToolArg
from pydantic import BaseModel, ConfigDict, Field, field_validator

from imagine_agent.errors import InvalidRequestError
from imagine_agent.service.decisions import decide_coin

if TYPE_CHECKING:
    from .context import HumanApproval, ImagineContext

__all__ = ["BudgetArgs", "Plan", "Runtime", "TaskArgs", "VideoRequestArgs", "WaitArgs", "plan_request"]

Runtime = Annotated[Any, InjectedToolArg]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")

    runtime: Runtime = Field(default=None, exclude=True)


class VideoRequestArgs(_Args):
    """One video request; ``quote_video`` and ``generate_video`` take exactly the same arguments."""

    prompt: str = Field(
        min_length=1,
        max_length=4000,
        description="The full prompt to send, in one paragraph of plain text: subject, action, setting, camera, "
        "lighting and style, sized to the duration (see the enhancement guide).",
    )
    duration: float | None = Field(
        default=None,
        ge=1,
        le=60,
        description="Length in seconds, 1-60, exactly as the user asked. Omit for the default of 8.",
    )
    image: str | None = Field(
        default=None,
        description="Starting image for image-to-video: the https:// URL (or data:image/...;base64 URL) the user "
        "gave. Omit for text-to-video.",
    )
    remix_of: str | None = Field(
        default=None,
        max_length=200,
        description="Id of an earlier Sora video to remix or continue, when the user says 'remix <id>'.",
    )
    auto_clank: bool = Field(
        default=False,
        description="Ask to deploy a coin (Clanker token) for this video; the paying wallet becomes its creator. "
        "The operator's autoClank policy decides what is actually sent; the result says.",
    )
    auto_enhance: bool = Field(
        default=False,
        description="Ask the server to rewrite the prompt with the video model's own prompting guide.",
    )
    video_model: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$",
        description="Video model, one of those quote_video lists in 'models' (the server sells them). Omit "
        "for the server's default.",
    )

    @field_validator("duration")
    @classmethod
    def _whole_seconds(cls, v: float | None) -> float | None:
        return float(int(v)) if v is not None and v.is_integer() else v


class TaskArgs(_Args):
    task_id: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
        description="The taskId that generate_video returned.",
    )


class WaitArgs(TaskArgs):
    download: bool = Field(default=True, description="Download the video (and preview) when it is done.")


class BudgetArgs(_Args):
    pass


@dataclass(frozen=True)
class Plan:
    """The request that will actually be quoted or paid for, after the operator's policy."""

    prompt: str
    duration: int | float | None
    image: str | None
    remix_of: str | None
    auto_clank: bool
    auto_enhance: bool
    coin_note: str | None = None
    refusal: str | None = None
    video_model: str | None = None

    def options(self) -> dict[str, Any]:
        """Keyword arguments for ``ImagineService.quote`` / ``generate``."""
        return {
            "duration": self.duration,
            "image": self.image,
            "remix": self.remix_of,
            "auto_clank": self.auto_clank,
            "auto_enhance": self.auto_enhance,
            "video_model": self.video_model,
        }

    def key(self) -> str:
        """Identity of the request, for caching its quote."""
        return json.dumps([self.prompt, self.options()], sort_keys=True, separators=(",", ":"))

    def to_json(self) -> dict[str, Any]:
        image = self.image if self.image is None or len(self.image) < 200 else self.image[:60] + "…"
        out: dict[str, Any] = {
            "prompt": self.prompt,
            "duration": self.duration if self.duration is not None else 8,
            "autoClank": self.auto_clank,
            "autoEnhance": self.auto_enhance,
        }
        if image:
            out["image"] = image
        if self.remix_of:
            out["remixOf"] = self.remix_of
        if self.video_model:
            out["videoModel"] = self.video_model
        if self.coin_note:
            out["autoClankNote"] = self.coin_note
        return out


def plan_request(
    args: VideoRequestArgs, context: ImagineContext, *, human: HumanApproval | None, assume_approved: bool = False
) -> Plan:
    """Apply the operator's autoClank policy (rule 6) and the image rules to the model's arguments.

    ``never`` and ``always`` override whatever the model asked; ``agent`` follows it; ``ask`` sends a
    coin only when the model asked and a human approved this call (``assume_approved`` is for pricing
    the call before the human is asked).
    """
    image = args.image
    if image is not None and not image.startswith(("http://", "https://", "data:")) and not context.allow_local_images:
        raise InvalidRequestError(
            "image must be an https:// URL or a data:image/...;base64 URL; local files are not available to the agent"
        )
    duration: int | float | None = args.duration
    if duration is not None and float(duration).is_integer():
        duration = int(duration)
    coin = decide_coin(
        context.policy, args.auto_clank, person_approved=human is not None, assume_approved=assume_approved
    )
    return Plan(
        args.prompt,
        duration,
        image,
        args.remix_of,
        coin.send,
        args.auto_enhance,
        coin.note,
        coin.refusal,
        video_model=args.video_model,
    )
