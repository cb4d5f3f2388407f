"""Enhancing a prompt by the rules of ``prompts/enhance.md``: camera, light and style a subject lacks."""

from __future__ import annotations

import re

from ...limits import MAX_PROMPT_CHARS
from .intent import VideoAsk

__all__ = ["enhance_prompt"]

_CAMERA = re.compile(
    r"\b(?:close[- ]?up|wide|medium shot|tracking|drone|aerial|dolly|pan(?:s|ning)?|tilt|handheld|orbit\w*|"
    r"push[- ]in|zoom\w*|pov|first[- ]person|overhead|static shot|camera)\b",
    re.IGNORECASE,
)
_LIGHT = re.compile(
    r"\b(?:sunset|sunrise|golden hour|dawn|dusk|night\w*|neon|sunlit|sunlight|moonlight|moonlit|candle\w*|"
    r"overcast|backlit|lit|lighting|light|noon|midday|twilight|studio)\b",
    re.IGNORECASE,
)
_STYLE = re.compile(
    r"\b(?:cinematic|anime|cartoon|watercolou?r|photoreal\w*|realistic|35 ?mm|film grain|claymation|pixel art|"
    r"documentary|3d|cgi|noir|vintage|retro|style|stop[- ]motion|oil painting|sketch|vhs)\b",
    re.IGNORECASE,
)
_LIGHT_DETAIL = (
    (
        re.compile(r"\b(?:sunset|golden hour|dusk)\b", re.I),
        "Warm golden-hour light from a low sun, long soft shadows and a glowing rim light.",
    ),
    (re.compile(r"\b(?:sunrise|dawn)\b", re.I), "Cool, soft dawn light warming slowly as the sun rises."),
    (re.compile(r"\bneon\b", re.I), "Saturated neon light against deep shadows, with reflections on wet surfaces."),
    (
        re.compile(r"\b(?:night|moonlit|moonlight)\b", re.I),
        "Low-key night lighting: moonlight and a few warm practical lights.",
    ),
)


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def enhance_prompt(ask: VideoAsk) -> str:
    """A video prompt by the rules of ``prompts/enhance.md``: keep the subject, fill in what was left open
    (camera, lighting, style), and size the action to the duration. Deterministic."""
    if ask.auto_enhance:
        return _sentence(ask.subject)  # the server enhances; send the user's words as they are
    seconds = ask.duration or 8.0
    parts = [_sentence(ask.subject)]
    if ask.image:
        parts.append(
            "Start from the reference image and keep its composition and subject; bring it to life "
            "with natural, believable motion."
        )
    if ask.remix_of:
        parts.append("Keep the look of the original video and change only what is described.")
    if not _CAMERA.search(ask.subject):
        if seconds <= 5:
            parts.append("A single steady medium shot.")
        elif seconds <= 12:
            parts.append("A smooth tracking shot that follows the subject at eye level, one continuous camera move.")
        else:
            parts.append("Open on a wide establishing shot, then a slow push-in on the subject.")
    detail = next((line for pattern, line in _LIGHT_DETAIL if pattern.search(ask.subject)), None)
    if detail:
        parts.append(detail)
    elif not _LIGHT.search(ask.subject):
        parts.append("Soft natural daylight with gentle contrast.")
    if not _STYLE.search(ask.subject):
        parts.append("Photoreal and cinematic, shallow depth of field, natural colour.")
    if seconds <= 5:
        parts.append("One brief moment, no cuts.")
    elif seconds <= 12:
        parts.append(f"One continuous action that fits {seconds:g} seconds, with a clear start and finish, no cuts.")
    else:
        parts.append(f"Two or three beats in one location across {seconds:g} seconds, no hard cuts.")
    # Never push a prompt the server would take over its limit: drop what was added, last first.
    while len(parts) > 1 and len(" ".join(parts)) > MAX_PROMPT_CHARS:
        parts.pop()
    prompt = " ".join(parts)
    return prompt if len(prompt) <= MAX_PROMPT_CHARS else ask.subject
