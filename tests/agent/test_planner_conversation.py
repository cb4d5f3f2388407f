"""The offline planner follows the conversation: a "yes" buys what was quoted, unreadable requests are said to
be unreadable, local images are used or refused before paying, a forbidden coin is raised before paying."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from imagine_agent.agent import build_agent
from imagine_agent.models import MAX_PROMPT_CHARS
from imagine_agent.planner import HELP, NOTHING_TO_CONFIRM, UNCLEAR, VideoAsk, enhance_prompt, parse_request
from imagine_agent.service import ImagineService
from imagine_agent.tools import ImagineContext

from .conftest import model_turns, thread, user

KITE = "how much is a 4 second video of a kite over the dunes?"


def _reply(result: dict[str, Any]) -> str:
    return str(result["messages"][-1].content)


def _calls(result: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [c["args"] for m in model_turns(result["messages"]) for c in m.tool_calls if c["name"] == name]


class Chat:
    """One conversation (one thread) with the agent on the planner."""

    def __init__(self, context: ImagineContext) -> None:
        self.agent = build_agent(service=context.service)
        self.config = thread()
        self.context = context

    def say(self, text: str) -> dict[str, Any]:
        result: dict[str, Any] = self.agent.invoke(user(text), self.config, context=self.context)
        return result

    def this_turn(self, result: dict[str, Any], name: str) -> list[dict[str, Any]]:
        """The arguments of the tool calls named ``name`` since the last user message."""
        messages = result["messages"]
        last_user = max(i for i, m in enumerate(messages) if m.type == "human")
        return [c["args"] for m in messages[last_user:] if m.type == "ai" for c in m.tool_calls if c["name"] == name]


@pytest.mark.parametrize(
    "phrase", ["make it", "yes", "go ahead", "do it", "Yes please.", "ok, go ahead", "sure, do it", "make it please"]
)
def test_after_a_quote_a_yes_buys_the_quoted_request(context: ImagineContext, phrase: str) -> None:
    chat = Chat(context)
    quoted = chat.say(KITE)
    [quote] = chat.this_turn(quoted, "quote_video")
    assert context.service.receipts() == [] and "Say the word" in _reply(quoted)

    bought = chat.say(phrase)
    [generate] = chat.this_turn(bought, "generate_video")
    assert generate == quote  # same prompt, duration (and model, coin, image) as quoted
    [wire] = context.service.requests.paid_creates  # type: ignore[attr-defined]
    assert wire["prompt"] == quote["prompt"] and wire["templateData"]["duration"] == 4
    assert "kite" in wire["prompt"] and "video of it" not in _reply(bought).lower()
    assert "4-second video of a kite over the dunes is ready" in _reply(bought)
    assert len(context.service.receipts()) == 1


def test_make_it_with_a_new_duration_buys_the_quoted_prompt_at_that_length(context: ImagineContext) -> None:
    chat = Chat(context)
    [quote] = chat.this_turn(chat.say(KITE), "quote_video")
    bought = chat.say("make it 2 seconds")
    [generate] = chat.this_turn(bought, "generate_video")
    assert generate == {**quote, "duration": 2}
    [payment] = context.service.receipts()
    assert payment.amount == 250_000


def test_a_yes_with_nothing_quoted_or_already_bought_pays_nothing(context: ImagineContext) -> None:
    chat = Chat(context)
    first = chat.say("yes")
    assert NOTHING_TO_CONFIRM in _reply(first) and context.service.receipts() == []
    chat.say("make a 2 second video of a paper boat")
    assert len(context.service.receipts()) == 1
    again = chat.say("do it")
    assert NOTHING_TO_CONFIRM in _reply(again)
    assert not chat.this_turn(again, "generate_video") and len(context.service.receipts()) == 1


@pytest.mark.parametrize(
    "text",
    [
        "haz un video de un gato en la playa",
        "fais une vidéo d'un chat sur la plage",
        "猫のビデオを作って",
        "asdf qwerty",
        "the thing with the stuff",
    ],
)
def test_an_unreadable_request_is_said_to_be_unreadable(context: ImagineContext, text: str) -> None:
    result = Chat(context).say(text)
    reply = _reply(result)
    assert reply.startswith("I didn't understand that") and "I can: make a video" in reply
    assert reply.startswith(UNCLEAR) and not any(m.tool_calls for m in model_turns(result["messages"]))
    assert context.service.receipts() == []


@pytest.mark.parametrize("text", ["help", "what can you do?", "hi"])
def test_help_is_help(text: str) -> None:
    assert parse_request(text).kind == "help"
    assert "I make short AI videos" in HELP


def test_a_local_image_is_refused_before_paying(context: ImagineContext, tmp_path: Path) -> None:
    picture = tmp_path / "cat.png"
    Image.new("RGB", (64, 64), "orange").save(picture)
    result = Chat(context).say(f"animate {picture} so the cat waves")
    [quote] = _calls(result, "quote_video")
    assert quote["image"] == str(picture) and "cat waves" in quote["prompt"]
    reply = _reply(result)
    assert reply.startswith("I did not pay for this video") and "local files" in reply
    assert "Nothing was signed or paid" in reply
    assert context.service.receipts() == [] and context.service.requests.sent == []  # type: ignore[attr-defined]


def test_a_local_image_is_uploaded_when_the_operator_allows_it(context: ImagineContext, tmp_path: Path) -> None:
    picture = tmp_path / "cat.png"
    Image.new("RGB", (64, 64), "orange").save(picture)
    allowed = ImagineContext(**{**context.__dict__, "allow_local_images": True})
    result = Chat(allowed).say(f"animate {picture} so the cat waves, 2 seconds")
    [generate] = _calls(result, "generate_video")
    assert generate["image"] == str(picture)
    [payment] = context.service.receipts()
    assert payment.amount == 250_000 and "is ready" in _reply(result)
    [create] = [
        r
        for r in context.service.requests.sent  # type: ignore[attr-defined]
        if r.url.path.endswith("/generation/create") and "x-payment" in r.headers
    ]
    assert create.headers["content-type"].startswith("multipart/form-data")


def test_animate_a_url_uses_it_as_the_image() -> None:
    ask = parse_request("animate https://example.com/cat.png").video
    assert ask == VideoAsk("the scene in the reference image", image="https://example.com/cat.png")
    ask = parse_request("make a video of https://example.com/dog.jpg").video
    assert ask is not None and ask.image == "https://example.com/dog.jpg"


def test_a_forbidden_coin_is_raised_before_paying(make_sandbox_service: Any, tmp_path: Path) -> None:
    service: ImagineService = make_sandbox_service(auto_clank="never")
    context = ImagineContext(service=service, output_dir=tmp_path / "videos")
    chat = Chat(context)
    asked = chat.say("make me a 2-second video of a kite and coin it")
    reply = _reply(asked)
    assert "I can't deploy a coin for this video" in reply and "'never'" in reply
    assert "Shall I make it without the coin?" in reply and "0.250000 USDC" in reply
    assert not chat.this_turn(asked, "generate_video") and service.receipts() == []

    bought = chat.say("yes")
    [generate] = chat.this_turn(bought, "generate_video")
    assert "auto_clank" not in generate
    [wire] = service.requests.paid_creates  # type: ignore[attr-defined]
    assert wire["templateData"].get("autoClank", False) is False
    assert "Coin:" not in _reply(bought) and len(service.receipts()) == 1


@pytest.mark.parametrize(
    ("text", "ask"),
    [
        ("an 8-second video of a fox", VideoAsk("a fox", 8.0)),
        ("make an 8-second video of a fox", VideoAsk("a fox", 8.0)),
        ("I want an 8-second video of a cat", VideoAsk("a cat", 8.0)),
        ("I'd like an eight second clip of rain", VideoAsk("rain", 8.0)),
        ("an 8-second video", VideoAsk("a short cinematic scene", 8.0)),
    ],
)
def test_an_8_second_video(text: str, ask: VideoAsk) -> None:
    assert parse_request(text).video == ask


@pytest.mark.parametrize("length", [3900, 3990, MAX_PROMPT_CHARS - 1, MAX_PROMPT_CHARS])
def test_enhancement_never_pushes_a_valid_prompt_over_the_limit(length: int) -> None:
    subject = ("a fox " * 700)[:length].strip()
    prompt = enhance_prompt(VideoAsk(subject, 8.0))
    assert len(prompt) <= MAX_PROMPT_CHARS and subject[1:] in prompt


def test_enhancement_keeps_what_fits() -> None:
    subject = "a fox " * 600  # 3600 characters: room for some of the additions
    prompt = enhance_prompt(VideoAsk(subject.strip(), 8.0))
    assert len(subject) < len(prompt) <= MAX_PROMPT_CHARS
