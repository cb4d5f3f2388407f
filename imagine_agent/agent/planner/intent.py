"""Reading a chat message: which tool flow it asks for, and with what settings (the planner's one rule).

The rules read English with regular expressions: a duration ("8 seconds", "ten-second", "half a minute"), an
image URL or local file, ``remix <id>``, "coin it", a task id to wait for or check, a budget question, a
confirmation. No LangChain here: the plugin reuses ``parse_duration`` without loading the agent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Intent", "VideoAsk", "parse_duration", "parse_request"]

# ------------------------------------------------------------------------------------------ reading

_NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
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
_LOCAL_IMAGE = re.compile(
    r"(?<![\w/:.-])((?:~|\.{1,2})?/?(?:[\w.-]+/)*[\w.-]+\.(?:png|jpe?g|webp|gif))(?![\w/])", re.IGNORECASE
)
_ENGLISH = frozenset(
    {
        "a",
        "an",
        "the",
        "of",
        "with",
        "and",
        "in",
        "on",
        "at",
        "to",
        "me",
        "my",
        "make",
        "video",
        "clip",
        "please",
        "for",
        "is",
        "it",
        "this",
        "that",
        "from",
        "by",
        "show",
        "create",
        "generate",
        "render",
        "film",
        "cat",
        "dog",
        "some",
    }
)
_FOREIGN = frozenset(
    {
        "de",
        "del",
        "la",
        "el",
        "los",
        "las",
        "un",
        "una",
        "en",
        "y",
        "con",
        "por",
        "para",
        "que",
        "le",
        "les",
        "des",
        "du",
        "une",
        "et",
        "avec",
        "pour",
        "sur",
        "der",
        "die",
        "das",
        "und",
        "ein",
        "eine",
        "mit",
        "von",
        "zu",
        "auf",
        "ist",
        "il",
        "di",
        "che",
        "per",
        "um",
        "uma",
        "com",
        "não",
        "fais",
        "faire",
        "haz",
        "hacer",
        "mach",
        "machen",
        "crea",
        "créer",
        "créez",
        "vidéo",
        "película",
        "pelicula",
        "peux",
        "puedes",
        "kannst",
        "bitte",
        "s'il",
        "vous",
        "plaît",
    }
)
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


def _duration(text: str) -> tuple[float, re.Match[str]] | None:
    """The first duration the text names, in seconds, and where it stands."""
    if found := _DURATION.search(text):
        return _number(found.group(1)), found
    if found := _MINUTE.search(text):
        return (30.0 if found.group(1) else 60.0), found
    return None


def parse_duration(text: str) -> float | None:
    """The duration a message names in words ("a 10-second video", "ten seconds", "half a minute"), in
    seconds; None when it names none. The one rule for durations: the planner and the plugin both read it."""
    named = _duration(text)
    return named[0] if named is not None else None


def _tidy(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    text = re.sub(r"^(?:[,;:.!?-]|\band\b|\bthen\b|\bplease\b|\bso\s+that\b|\bso\b)\s*", "", text, flags=re.IGNORECASE)
    text = re.sub(
        r"(?:[,;:-]|\band\b|\bthen\b|\bplease\b|\bfrom\b|\busing\b|\bwith\b|\bof\b)\s*$", "", text, flags=re.IGNORECASE
    )
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
        rest = rest[: url.start()] + " " + rest[url.end() :]
    elif local := _LOCAL_IMAGE.search(rest):
        image = local.group(1)
        rest = rest[: local.start()] + " " + rest[local.end() :]
    remix = _REMIX.search(rest)
    remix_of = remix.group(1).rstrip(".,;:!?") if remix else None
    if remix:
        rest = rest[: remix.start()] + " " + rest[remix.end() :]
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
    if (named := _duration(rest)) is not None:
        duration, found = named
        rest = _drop_article(rest[: found.start()]) + " " + rest[found.end() :]
    rest = re.sub(r"\binto\s+(?:a|an)\s+(?:video|clip|animation|movie)\b", " ", rest, flags=re.IGNORECASE)
    subject = _tidy(_LEAD.sub("", _tidy(rest), count=1))
    subject = re.sub(r"^(?:this|that|it)\s+(?:image|photo|picture|pic)\b\s*", "", subject, flags=re.IGNORECASE)
    subject = _tidy(subject)
    if (
        not image
        and not remix_of
        and re.fullmatch(
            r"(?:it|that|this|(?:this|that|the\s+same)\s+one|the\s+same|"
            r"the\s+video|one)",
            subject,
            re.IGNORECASE,
        )
    ):
        # "make it 10 seconds": about the video just quoted, never a video of the word "it".
        return Intent("confirm", VideoAsk("", duration, coin=coin))
    if subject and remix_of and re.match(r"(?:in|with|as|but|using|now)\b", subject, re.IGNORECASE):
        subject = "the same video, " + subject
    if not subject:
        subject = (
            "the scene in the reference image"
            if image
            else "the original video, with fresh motion"
            if remix_of
            else "a short cinematic scene"
        )
    return Intent("video", VideoAsk(subject, duration, image, remix_of, coin, auto_enhance, price_only))
