"""A deterministic offline planner: a LangChain chat model that is not an LLM.

It lets the agent run with no keys and no network — the default when no model is configured, and the
test double. It reads the user's last message with regular expressions (duration, image URL,
``remix <id>``, "coin it"), enhances the prompt by the rules of ``prompts/enhance.md``, then plans
the same tool flow an LLM would: quote (with a budget check) → generate (the tool waits) → narrate.
That is three model calls per delivered video. Everything it writes says it is a rule-based planner.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from .models import MAX_PROMPT_CHARS
from .money import usdc_text
from .tools import parse_tool_result

__all__ = [
    "PLANNER_LABEL",
    "PLANNER_NAME",
    "Intent",
    "OfflinePlanner",
    "VideoAsk",
    "enhance_prompt",
    "parse_request",
]

PLANNER_NAME = "imagine-offline-planner"
PLANNER_LABEL = "(Offline planner: rule-based, not an LLM.)"
VIDEO_TOOLS = frozenset({"quote_video", "generate_video", "wait_for_video", "video_status", "budget_status"})

# ------------------------------------------------------------------------------------------ reading

_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60,
}
_NUM = r"\d{1,3}(?:\.\d+)?|" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True))
_DURATION = re.compile(rf"\b({_NUM})\s*(?:-\s*|\s+)?(?:seconds?|secs?|s)\b(?:\s+long\b)?", re.IGNORECASE)
_MINUTE = re.compile(r"\b(?:(half)\s+a|a|one)\s+minute\b(?:\s+long\b)?", re.IGNORECASE)
_URL = re.compile(r"(https?://[^\s<>\"'`]+|data:image/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=]+)", re.IGNORECASE)
_REMIX = re.compile(
    r"\b(?:remix|continue|extend)(?:\s+of)?(?:\s+(?:the\s+)?(?:sora\s+)?video)?(?:\s+id)?\s*[:#]?\s*[\"'`]?"
    r"((?=[A-Za-z0-9_.:-]*\d)[A-Za-z0-9][A-Za-z0-9_.:-]{2,199})",
    re.IGNORECASE,
)
_NO_COIN = re.compile(
    r"\b(?:no|don'?t|do\s+not|never|without(?:\s+(?:a|the))?|with\s+no)\s+(?:coin(?:ing)?|token|clank(?:er|ing)?|auto-?\s?clank)\w*",
    re.IGNORECASE,
)
_COIN = re.compile(
    r"\b(?:(?:and\s+)?coin\s+(?:it|this|that|the\s+video)|(?:and\s+)?clank(?:er)?\s+it|auto[-\s]?clank|"
    r"tokeni[sz]e\s+it|(?:and\s+)?(?:deploy|launch|mint|create|make)\s+(?:a\s+|an\s+|the\s+)?(?:coin|token|clanker)"
    r"(?:\s+for\s+it)?|with\s+a\s+(?:coin|token))\b",
    re.IGNORECASE,
)
_AUTO_ENHANCE = re.compile(
    r"\b(?:auto[-\s]?enhance|(?:let|have|ask)\s+the\s+server\s+(?:enhance|improve|rewrite)(?:\s+(?:it|the\s+prompt))?)\b",
    re.IGNORECASE,
)
_TASK_ID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE)
_VIDEO_WORDS = re.compile(
    r"\b(?:video|clip|film|movie|animat\w*|footage|shot|scene|make|generate|create|render|produce|shoot|remix)\b",
    re.IGNORECASE,
)
_PRICE_QUESTION = re.compile(
    r"\b(?:how\s+much|what(?:'s|\s+is|\s+would|\s+does|\s+will)?\s+(?:it\s+|that\s+|the\s+)?(?:price|cost)\w*|"
    r"price\s+(?:of|for|check)|quote|estimate|cost\s+(?:of|for))\b|\bcosts?\s*\??\s*$",
    re.IGNORECASE,
)
_QUESTION_LEAD = re.compile(
    r"^\s*(?:what\s+)?(?:would|will|does|is|to)\b|\b(?:would|will)\s+(?:it|that)\s+(?:be|cost)\b", re.IGNORECASE
)
_BUDGET_WORDS = re.compile(r"\b(?:budget|balance|spent|spend|remaining|left\s+to\s+spend|caps?)\b", re.IGNORECASE)
_LEAD = re.compile(
    r"^(?:(?:hey|hi|ok|okay|please|pls|now|so)[,!]?\s+)*(?:(?:can|could|would|will)\s+you\s+)?(?:please\s+)?"
    r"(?:i(?:\s+(?:want|need|would\s+like)|'d\s+like)\s+(?:to\s+(?:see|have|get)\s+)?)?"
    r"(?:(?:make|generate|create|render|produce|give|shoot|animate|turn|do|film|build|show)(?:\s+(?:me|us))?(?:\s+|$))?"
    r"(?:(?:a|an|the|one|some)\s+)?(?:(?:short|quick|little|new|cool|nice|cinematic)\s+)?"
    r"(?:(?:video|clip|film|movie|animation|sora\s+video)\b\s*(?:(?:of|showing|where|with|about|that\s+shows|in\s+which)\s+)?)?",
    re.IGNORECASE,
)


_CONFIRM = re.compile(
    r"^\s*(?:(?:ok(?:ay)?|yes|yeah|yep|sure|great|good|fine|alright|please)[,.!]?\s*)*"
    r"(?:(?:yes|yeah|yep|sure|ok(?:ay)?)|(?:please\s+)?(?:go\s+ahead|do\s+it|make\s+it|buy\s+it|order\s+it|proceed|"
    r"confirm(?:ed)?|let'?s\s+(?:do|make)\s+it|go\s+for\s+it|sounds\s+good|that'?s\s+fine))"
    r"(?:[,.!]?\s*(?:then|now|please|thanks|thank\s+you|(?:without|with\s+no)\s+(?:the\s+|a\s+)?(?:coin|token)|"
    r"go\s+ahead|do\s+it|make\s+it))*\s*[.!]*\s*$",
    re.IGNORECASE,
)
_HELP_ASK = re.compile(
    r"^\s*(?:help|\?|hi|hello|hey|what\s+can\s+you\s+do|what\s+do\s+you\s+do|how\s+does\s+this\s+work|"
    r"who\s+are\s+you|commands|usage)\b[\s?!.]*(?:\w+[\s?!.]*)?$",
    re.IGNORECASE,
)
# A local image: an absolute, home or relative path, or a bare file name, with an image extension.
_LOCAL_IMAGE = re.compile(r"(?<![\w/:.-])((?:~|\.{1,2})?/?(?:[\w.-]+/)*[\w.-]+\.(?:png|jpe?g|webp|gif))(?![\w/])",
                          re.IGNORECASE)
_ENGLISH = frozenset({
    "a", "an", "the", "of", "with", "and", "in", "on", "at", "to", "me", "my", "make", "video", "clip", "please",
    "for", "is", "it", "this", "that", "from", "by", "show", "create", "generate", "render", "film", "cat",
    "dog", "some",
})
_FOREIGN = frozenset({
    "de", "del", "la", "el", "los", "las", "un", "una", "en", "y", "con", "por", "para", "que", "le", "les", "des",
    "du", "une", "et", "avec", "pour", "sur", "der", "die", "das", "und", "ein", "eine", "mit", "von", "zu", "auf",
    "ist", "il", "di", "che", "per", "um", "uma", "com", "não", "fais", "faire", "haz", "hacer", "mach", "machen",
    "crea", "créer", "créez", "vidéo", "película", "pelicula", "peux", "puedes", "kannst", "bitte", "s'il", "vous",
    "plaît",
})
_NON_LATIN = re.compile(r"[\u0400-\u04ff\u0590-\u06ff\u0900-\u097f\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]")


def _foreign(text: str) -> bool:
    """A message that is probably not English: the rules read English only, so say so instead of guessing."""
    letters = [c for c in text if c.isalpha()]
    if letters and sum(1 for c in letters if _NON_LATIN.match(c)) * 2 > len(letters):
        return True
    words = re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)?", text.lower())
    foreign = sum(1 for w in words if w in _FOREIGN)
    return foreign >= 2 and foreign > sum(1 for w in words if w in _ENGLISH)


@dataclass(frozen=True)
class VideoAsk:
    """What the user asked for: their subject and the settings they named."""

    subject: str
    duration: float | None = None
    image: str | None = None
    remix_of: str | None = None
    coin: bool | None = None  # True: asked for a coin; False: asked for none; None: did not say
    auto_enhance: bool = False
    price_only: bool = False  # "how much would …": quote, never buy


@dataclass(frozen=True)
class Intent:
    """``confirm``: "yes", "make it" — buy what was just quoted; ``unclear``: a message the rules cannot read."""

    kind: Literal["video", "budget", "status", "wait", "help", "confirm", "unclear"]
    video: VideoAsk | None = None
    task_id: str | None = None
    args: dict[str, Any] | None = None  # the exact tool arguments to use (a confirmed earlier quote)


def _number(text: str) -> float:
    word = text.lower()
    return float(_NUMBER_WORDS[word]) if word in _NUMBER_WORDS else float(text)


def _tidy(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    text = re.sub(r"^(?:[,;:.!?-]|\band\b|\bthen\b|\bplease\b|\bso\s+that\b|\bso\b)\s*", "", text,
                  flags=re.IGNORECASE)
    text = re.sub(r"(?:[,;:-]|\band\b|\bthen\b|\bplease\b|\bfrom\b|\busing\b|\bwith\b|\bof\b)\s*$", "", text,
                  flags=re.IGNORECASE)
    return text.strip(" ,;:-?")


def _drop_article(before: str) -> str:
    """The text before a duration, without the article that went with it ("an 8-second video" -> "video")."""
    return re.sub(r"\b(?:an?|one)\s*$", "", before, flags=re.IGNORECASE)


def parse_request(text: str) -> Intent:
    """Read a chat message the way the planner does: which tool flow, and with what settings."""
    rest = text.strip()
    if _CONFIRM.match(rest):
        return Intent("confirm", VideoAsk("", coin=False if _NO_COIN.search(rest) else None))
    if not rest or _HELP_ASK.match(rest):
        return Intent("help")
    if _foreign(rest):
        return Intent("unclear")
    image = None
    url = _URL.search(rest)
    if url:
        image = url.group(1).rstrip(".,;:!?)]}")
        rest = rest[: url.start()] + " " + rest[url.end():]
    elif local := _LOCAL_IMAGE.search(rest):
        image = local.group(1)
        rest = rest[: local.start()] + " " + rest[local.end():]
    remix = _REMIX.search(rest)
    remix_of = remix.group(1).rstrip(".,;:!?") if remix else None
    if remix:
        rest = rest[: remix.start()] + " " + rest[remix.end():]
    task = _TASK_ID.search(rest)
    lowered = rest.lower()
    if task and not remix and not image:
        if re.search(r"\b(?:wait|collect|fetch|download|finish)\w*\b", lowered):
            return Intent("wait", task_id=task.group(0))
        if re.search(r"\b(?:status|progress|check|how\s+is|done)\b", lowered):
            return Intent("status", task_id=task.group(0))
    if not image and not remix_of and not _VIDEO_WORDS.search(rest):
        return Intent("budget") if _BUDGET_WORDS.search(rest) else Intent("unclear")

    price_only = bool(_PRICE_QUESTION.search(rest))
    rest = _PRICE_QUESTION.sub(" ", rest)
    rest = _QUESTION_LEAD.sub(" ", rest)
    coin: bool | None = None
    if _NO_COIN.search(rest):
        coin = False
        rest = _NO_COIN.sub(" ", rest)
    elif _COIN.search(rest):
        coin = True
        rest = _COIN.sub(" ", rest)
    auto_enhance = bool(_AUTO_ENHANCE.search(rest))
    rest = _AUTO_ENHANCE.sub(" ", rest)
    duration = None
    if found := _DURATION.search(rest):
        duration = _number(found.group(1))
        rest = _drop_article(rest[: found.start()]) + " " + rest[found.end():]
    elif found := _MINUTE.search(rest):
        duration = 30.0 if found.group(1) else 60.0
        rest = _drop_article(rest[: found.start()]) + " " + rest[found.end():]
    rest = re.sub(r"\binto\s+(?:a|an)\s+(?:video|clip|animation|movie)\b", " ", rest, flags=re.IGNORECASE)
    subject = _tidy(_LEAD.sub("", _tidy(rest), count=1))
    subject = re.sub(r"^(?:this|that|it)\s+(?:image|photo|picture|pic)\b\s*", "", subject, flags=re.IGNORECASE)
    subject = _tidy(subject)
    if not image and not remix_of and re.fullmatch(r"(?:it|that|this|(?:this|that|the\s+same)\s+one|the\s+same|"
                                                    r"the\s+video|one)", subject, re.IGNORECASE):
        # "make it 10 seconds": about the video just quoted, never a video of the word "it".
        return Intent("confirm", VideoAsk("", duration, coin=coin))
    if subject and remix_of and re.match(r"(?:in|with|as|but|using|now)\b", subject, re.IGNORECASE):
        subject = "the same video, " + subject
    if not subject:
        subject = ("the scene in the reference image" if image else
                   "the original video, with fresh motion" if remix_of else "a short cinematic scene")
    return Intent("video", VideoAsk(subject, duration, image, remix_of, coin, auto_enhance, price_only))


# ------------------------------------------------------------------------------------- enhancement

_CAMERA = re.compile(
    r"\b(?:close[- ]?up|wide|medium shot|tracking|drone|aerial|dolly|pan(?:s|ning)?|tilt|handheld|orbit\w*|"
    r"push[- ]in|zoom\w*|pov|first[- ]person|overhead|static shot|camera)\b", re.IGNORECASE)
_LIGHT = re.compile(
    r"\b(?:sunset|sunrise|golden hour|dawn|dusk|night\w*|neon|sunlit|sunlight|moonlight|moonlit|candle\w*|"
    r"overcast|backlit|lit|lighting|light|noon|midday|twilight|studio)\b", re.IGNORECASE)
_STYLE = re.compile(
    r"\b(?:cinematic|anime|cartoon|watercolou?r|photoreal\w*|realistic|35 ?mm|film grain|claymation|pixel art|"
    r"documentary|3d|cgi|noir|vintage|retro|style|stop[- ]motion|oil painting|sketch|vhs)\b", re.IGNORECASE)
_LIGHT_DETAIL = (
    (re.compile(r"\b(?:sunset|golden hour|dusk)\b", re.I),
     "Warm golden-hour light from a low sun, long soft shadows and a glowing rim light."),
    (re.compile(r"\b(?:sunrise|dawn)\b", re.I), "Cool, soft dawn light warming slowly as the sun rises."),
    (re.compile(r"\bneon\b", re.I), "Saturated neon light against deep shadows, with reflections on wet surfaces."),
    (re.compile(r"\b(?:night|moonlit|moonlight)\b", re.I),
     "Low-key night lighting: moonlight and a few warm practical lights."),
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
        parts.append("Start from the reference image and keep its composition and subject; bring it to life "
                     "with natural, believable motion.")
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


# ---------------------------------------------------------------------------------------- planning


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return " ".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content if isinstance(b, str | dict))


def _parsed(message: ToolMessage) -> dict[str, Any]:
    return parse_tool_result(message.content) or {"message": _text(message)}


def _call(name: str, args: dict[str, Any]) -> ToolCall:
    return ToolCall(name=name, args=args, id=f"call_{uuid.uuid4().hex[:24]}", type="tool_call")


def _video_args(ask: VideoAsk) -> dict[str, Any]:
    args: dict[str, Any] = {"prompt": enhance_prompt(ask)}
    if ask.duration is not None:
        args["duration"] = ask.duration
    if ask.image:
        args["image"] = ask.image
    if ask.remix_of:
        args["remix_of"] = ask.remix_of
    if ask.coin:
        args["auto_clank"] = True
    if ask.auto_enhance:
        args["auto_enhance"] = True
    return args


def _line(label: str, value: Any) -> str | None:
    return f"{label}: {value}" if value not in (None, "", {}) else None


def _budget_line(left: dict[str, Any] | None) -> str | None:
    """The one budget vocabulary: left today, left in total, largest next payment."""
    if not left:
        return None
    parts = [f"left today {usdc_text(left, 'today')}"] if left.get("today") else []
    parts += [f"left in total {usdc_text(left, 'total')}"] if left.get("total") else []
    parts.append(f"largest next payment {usdc_text(left, 'nextCall')}")
    return "Budget: " + ", ".join(parts) + "."


def _narrate_video(ask: VideoAsk | None, result: dict[str, Any], ok: bool,
                   quote: dict[str, Any] | None = None) -> list[str]:
    """The narration format of ``prompts/narrate.md``, filled from a generate/wait tool result."""
    request = result.get("request") or {}
    seconds = request.get("duration") or (ask.duration if ask and ask.duration else 8)
    subject = ask.subject if ask else "your video"
    paid = result.get("paid")
    status = result.get("status")
    lines: list[str | None] = []
    if not ok:
        if result.get("taskId"):
            lines.append(f"The generation failed: {result.get('message', 'no reason given')}")
            lines.append(_line("Paid", _paid_text(paid)) if paid else "Nothing was paid.")
            lines.append("The payment stays recorded; a retry would be a new payment, so I did not retry.")
        elif str(result.get("message", "")).startswith("User rejected"):
            why = str(result["message"]).partition("with reason: ")[2]
            lines.append("Not paid: the payment needed a human's approval and was declined"
                         + (f" ({why.rstrip('.')})" if why else "") + ". Nothing was signed or paid.")
            if quote and quote.get("price"):
                lines.append(f"Price asked: {usdc_text(quote, 'price')}. Approve it next time, or ask for a shorter "
                             "video.")
        else:
            lines.append(f"I did not pay for this video: {result.get('message', 'the request was refused')}")
            if result.get("paid") is False:
                lines.append("Nothing was signed or paid.")
        lines.append(_line("Task", result.get("taskId")))
        return [line for line in lines if line]
    if status == "still_running":
        lines.append(f"Paid and started: your {seconds:g}-second video of {subject} is still being made.")
        lines.append(f"Collect it later with `imagine-agent wait {result.get('taskId')}` (or ask me to wait).")
    else:
        lines.append(f"Your {seconds:g}-second video of {subject} is ready.")
        video = result.get("videoPath")
        url = result.get("videoUrl")
        lines.append(_line("Video", f"{video} ({url})" if video and url else video or url))
        lines.append(_line("Preview", result.get("previewPath") or result.get("previewUrl")))
        lines.append(_line("Media page", result.get("mediaUrl")))
        if result.get("downloadError"):
            lines.append(f"Download problem: {result['downloadError']}")
    if request.get("prompt"):
        enhanced = " (the server was asked to enhance it)" if request.get("autoEnhance") else ""
        lines.append(f'Prompt sent{enhanced}: "{request["prompt"]}"')
    if result.get("newPayment") is False:
        lines.append("Paid: nothing new — this exact request was already paid for, so I followed that job.")
    else:
        lines.append(_line("Paid", _paid_text(paid)))
    lines.append(_budget_line(result.get("budgetLeft")))
    lines += [f"Budget warning: {warning}." for warning in result.get("budgetWarnings") or ()]
    coin = result.get("coin")
    if coin and coin.get("address"):
        symbol = f"${coin['symbol']} " if coin.get("symbol") else ""
        lines.append(f"Coin: {symbol}{coin['address']} on {coin.get('chain') or 'its chain'}. "
                     + ("The token existed before this video (attached, not deployed for it)." if coin.get("external")
                        else f"The paying wallet {coin.get('creator')} is the coin's creator and earns its trading "
                             "fees."))
    elif coin:
        lines.append(f"Coin: autoClank was sent, so a Clanker coin is deployed for this video. The paying wallet "
                     f"{coin.get('creator')} is the coin's creator and earns its trading fees.")
    elif request.get("autoClankNote"):
        lines.append(f"Coin: {request['autoClankNote']}.")
    lines.append(_line("Task", result.get("taskId")))
    if result.get("sandbox"):
        lines.append("Sandbox: no real money moved.")
    return [line for line in lines if line]


def _paid_text(paid: Any) -> str | None:
    if not isinstance(paid, dict):
        return None
    if paid.get("paidBy") == "credits":
        return "from the provider's credits (0 USDC, no budget used)"
    tx = paid.get("transaction") or "no receipt sent"
    return f"{usdc_text(paid)} on {paid.get('network')} to {paid.get('payTo')}, transaction {tx}"


def _narrate_refusal(ask: VideoAsk | None, quote: dict[str, Any]) -> list[str]:
    lines = [f"I did not pay for this video: {quote.get('refusal') or quote.get('message') or 'it was refused'}"]
    if quote.get("price"):
        seconds = (quote.get("request") or {}).get("duration") or 8
        lines.append(f"Price: {usdc_text(quote, 'price')} for {seconds:g} seconds; the largest next payment "
                     f"the budget allows is {usdc_text(quote, 'budgetLeftNextCall')}.")
    lines.append("Nothing was signed or paid. A shorter video costs less; only the operator can raise a cap "
                 "(for example IMAGINE_MAX_PER_CALL) — I cannot.")
    return lines


def _narrate_quote(ask: VideoAsk, quote: dict[str, Any]) -> list[str]:
    seconds = (quote.get("request") or {}).get("duration") or ask.duration or 8
    lines = [f"A {seconds:g}-second video of {ask.subject} costs {usdc_text(quote, 'price')} (quoted by the server)."]
    if quote.get("allowed"):
        lines.append(f"The budget allows it (largest next payment {usdc_text(quote, 'budgetLeftNextCall')}). "
                     "Say the word and I will make it.")
    else:
        lines.append(f"The budget would not allow it: {quote.get('refusal')}")
    lines.append("I only asked the price: nothing was signed or paid.")
    return lines


def _narrate_budget(body: dict[str, Any]) -> list[str]:
    left = body.get("left") or {}
    caps = body.get("caps") or {}
    return [
        f"Wallet {body.get('wallet')}: spent {usdc_text(body, 'spent')}, reserved {usdc_text(body, 'reserved')}, "
        f"unknown {usdc_text(body, 'unknown')}.",
        f"Left today {usdc_text(left, 'today', 'unlimited (no daily cap)')}, left in total "
        f"{usdc_text(left, 'total', 'unlimited (no total cap)')}, largest next payment {usdc_text(left, 'nextCall')}.",
        f"Caps (set by the operator): {usdc_text(caps, 'perCall')} per call, {usdc_text(caps, 'daily')} a day, "
        f"{usdc_text(caps, 'total')} in total; payments over {usdc_text(body, 'approvalThreshold')} need a human's "
        "approval.",
        f"autoClank policy: {body.get('autoClankPolicy')}.",
    ]


HELP = (
    "I make short AI videos and pay for them from the operator's wallet, within its budget. Try: "
    '"make me an 8-second video of a corgi surfing at sunset", "animate https://example.com/cat.png", '
    '"remix <video id> in anime style", "... and coin it", "what is my budget?", or "status <task id>".'
)


UNCLEAR = (
    "I didn't understand that. I am a rule-based planner and read requests in English only. I can: make a video "
    '("make an 8-second video of a corgi surfing at sunset"), tell its price first ("how much is a 4-second video '
    'of rain?"), animate an image ("animate https://example.com/cat.png"), remix a video ("remix <video id> in '
    'anime style"), show the budget ("what is my budget?") or check a video ("status <task id>").'
)
NOTHING_TO_CONFIRM = (
    "There is nothing waiting for a yes: I have not quoted a video in my last answer. Describe the video you want "
    '(for example "make an 8-second video of a corgi surfing at sunset") and I will quote it, then buy it.'
)


def _narrate_coin_refused(quote: dict[str, Any]) -> list[str]:
    note = (quote.get("request") or {}).get("autoClankNote") or "the operator's autoClank policy does not allow it"
    return [f"I can't deploy a coin for this video: {note}.",
            f"Nothing was signed or paid. Without the coin it costs {usdc_text(quote, 'price')}. "
            'Shall I make it without the coin? Say "yes" to go ahead, or ask for something else.']


def _calls(messages: Sequence[BaseMessage], name: str) -> list[ToolCall]:
    return [c for m in messages if isinstance(m, AIMessage) for c in m.tool_calls if c["name"] == name]


def _confirmed(history: Sequence[BaseMessage], confirm: Intent) -> Intent | None:
    """ "Yes" / "make it" after a quote: the request quoted in the previous turn, with the same arguments.

    None when the previous turn quoted nothing, or already bought its video (a yes never buys twice).
    """
    humans = [i for i, m in enumerate(history) if isinstance(m, HumanMessage)]
    if not humans:
        return None
    segment = history[humans[-1] + 1:]
    quotes = _calls(segment, "quote_video")
    if not quotes or _calls(segment, "generate_video"):
        return None
    args = dict(quotes[-1]["args"])
    answer = next((_parsed(m) for m in reversed(segment) if isinstance(m, ToolMessage) and m.name == "quote_video"),
                  {})
    change = confirm.video
    if args.get("auto_clank") and (not (answer.get("request") or {}).get("autoClank") or
                                   (change is not None and change.coin is False)):
        args.pop("auto_clank")  # the coin was refused by policy (or declined now): go on without it
    if change is not None and change.duration is not None:
        args["duration"] = change.duration
    ask = next((intent.video for i in reversed(humans)
                if (intent := parse_request(_text(history[i]))).kind == "video" and intent.video is not None),
               VideoAsk("the video you asked for"))
    ask = VideoAsk(ask.subject, args.get("duration"), args.get("image"), args.get("remix_of"),
                   bool(args.get("auto_clank")), bool(args.get("auto_enhance")), price_only=False)
    return Intent("video", ask, args=args)


class OfflinePlanner(BaseChatModel):
    """A rule-based stand-in for an LLM: plans quote → generate → narrate from the user's message.

    Not an LLM and says so (``response_metadata`` and every narration). No network, no keys.
    """

    bound_tools: tuple[str, ...] = ()
    output_tool: dict[str, Any] | None = None
    """The structured-output tool (``response_format``) to answer with, when the agent has one."""

    @property
    def _llm_type(self) -> str:
        return PLANNER_NAME

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": PLANNER_NAME, "llm": False}

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Remember the tools; anything not a video tool is taken as the structured-output schema."""
        names: list[str] = []
        output = None
        for tool in tools:
            schema = convert_to_openai_tool(tool)["function"]
            if schema["name"] in VIDEO_TOOLS:
                names.append(schema["name"])
            else:
                output = schema
        return self.model_copy(update={"bound_tools": tuple(names), "output_tool": output})

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self.plan(messages)
        message.response_metadata = {"model_name": PLANNER_NAME, "planner": "rule-based, not an LLM"}
        return ChatResult(generations=[ChatGeneration(message=message)])

    # ---- the rules
    def plan(self, messages: Sequence[BaseMessage]) -> AIMessage:
        """The next step, from the last user message and the tool results since it."""
        start = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
        if start < 0:
            return self._answer([HELP], {})
        intent = parse_request(_text(messages[start]))
        turn = messages[start + 1:]
        if intent.kind == "confirm":
            confirmed = _confirmed(messages[:start], intent)
            if confirmed is None:
                return self._answer([NOTHING_TO_CONFIRM], {})
            intent = confirmed
        results: dict[str, tuple[dict[str, Any], bool]] = {}
        for m in turn:
            if isinstance(m, ToolMessage) and m.name:
                results[m.name] = (_parsed(m), m.status != "error")
        if not any(isinstance(m, AIMessage) for m in turn):
            return self._first_step(intent)
        ask = intent.video
        for name in ("generate_video", "wait_for_video"):
            if name in results:
                body, ok = results[name]
                ok = ok and "error" not in body
                quote = results.get("quote_video", ({}, False))[0]
                return self._answer(_narrate_video(ask, body, ok, quote), body)
        if "quote_video" in results:
            quote, ok = results["quote_video"]
            if ok and ask is not None and ask.price_only:
                return self._answer(_narrate_quote(ask, quote), quote)
            if ok and ask is not None and ask.coin and not (quote.get("request") or {}).get("autoClank"):
                return self._answer(_narrate_coin_refused(quote), quote)
            if ok and quote.get("allowed") and "generate_video" in self.bound_tools and ask is not None:
                last_quote = next(c for m in reversed(turn) if isinstance(m, AIMessage)
                                  for c in m.tool_calls if c["name"] == "quote_video")
                return AIMessage(content="", tool_calls=[_call("generate_video", dict(last_quote["args"]))])
            return self._answer(_narrate_refusal(ask, quote), quote)
        if "video_status" in results:
            body, ok = results["video_status"]
            text = f"Task {body.get('taskId')}: {body.get('status')}"
            if body.get("progress") is not None:
                text += f" ({body['progress']}%)"
            if body.get("videoUrl"):
                text += f". Video: {body['videoUrl']}"
            return self._answer([text if ok else f"Could not check it: {body.get('message')}"], body)
        if "budget_status" in results:
            body, ok = results["budget_status"]
            return self._answer(_narrate_budget(body) if ok else [f"Could not read the budget: {body.get('message')}"],
                                body)
        return self._answer(["I could not finish that request."], {})

    def _first_step(self, intent: Intent) -> AIMessage:
        if intent.kind == "video" and intent.video is not None:
            args = dict(intent.args) if intent.args is not None else _video_args(intent.video)
            calls = [_call("quote_video", args)]
            if "budget_status" in self.bound_tools:
                calls.append(_call("budget_status", {}))
            return AIMessage(content="", tool_calls=calls)
        if intent.kind == "budget":
            return AIMessage(content="", tool_calls=[_call("budget_status", {})])
        if intent.kind == "status" and intent.task_id:
            return AIMessage(content="", tool_calls=[_call("video_status", {"task_id": intent.task_id})])
        if intent.kind == "wait" and intent.task_id:
            return AIMessage(content="", tool_calls=[_call("wait_for_video", {"task_id": intent.task_id})])
        if intent.kind == "unclear":
            return self._answer([UNCLEAR], {})
        return self._answer([HELP], {})

    def _answer(self, lines: list[str], facts: dict[str, Any]) -> AIMessage:
        text = "\n".join([*lines, PLANNER_LABEL])
        if self.output_tool is None:
            return AIMessage(content=text)
        # A structured final answer: fill the schema's fields we know, in its own names.
        known = _report_fields(text, facts)
        props = (self.output_tool.get("parameters") or {}).get("properties") or {}
        args = {k: v for k, v in known.items() if k in props}
        return AIMessage(content=text, tool_calls=[_call(self.output_tool["name"], args)])


def _report_fields(text: str, facts: dict[str, Any]) -> dict[str, Any]:
    paid = facts.get("paid")
    return {
        "reply": text,
        "task_id": facts.get("taskId"),
        "status": facts.get("status") or ("failed" if facts.get("error") else None),
        "video_path": facts.get("videoPath"),
        "video_url": facts.get("videoUrl"),
        "preview_url": facts.get("previewUrl"),
        "paid": _paid_text(paid) if isinstance(paid, dict) else None,
        "transaction": paid.get("transaction") if isinstance(paid, dict) else None,
        "coin_creator": (facts.get("coin") or {}).get("creator"),
    }
