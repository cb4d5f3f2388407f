"""The offline planner reads requests, enhances prompts by rule, and says it is not an LLM."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from imagine_agent.planner import PLANNER_LABEL, PLANNER_NAME, OfflinePlanner, VideoAsk, enhance_prompt, parse_request
from imagine_agent.tools import imagine_tools


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("make me an 8-second video of a corgi surfing at sunset", 8),
        ("a 12 seconds clip of rain", 12),
        ("video of a fox, 5s", 5),
        ("a ten-second film of a fox in snow", 10),
        ("a one minute video of waves", 60),
        ("half a minute video of clouds", 30),
        ("a 2.5 sec clip of a spark", 2.5),
        ("a video of the 1980s skyline", None),
    ],
)
def test_duration(text: str, seconds: float | None) -> None:
    intent = parse_request(text)
    assert intent.kind == "video" and intent.video is not None
    assert intent.video.duration == seconds


def test_subject_is_kept_and_boilerplate_dropped() -> None:
    ask = parse_request("make me an 8-second video of a corgi surfing at sunset").video
    assert ask == VideoAsk("a corgi surfing at sunset", 8.0)


def test_image_url_and_data_url() -> None:
    ask = parse_request("animate https://example.com/cat.png so the cat waves, 5 seconds").video
    assert ask is not None and ask.image == "https://example.com/cat.png" and ask.subject == "the cat waves"
    data = "data:image/png;base64,iVBORw0KGgo="
    ask = parse_request(f"turn this image {data} into a video").video
    assert ask is not None and ask.image == data and ask.subject == "the scene in the reference image"


@pytest.mark.parametrize(
    ("text", "remix", "subject"),
    [
        ("remix video_68abc123 in anime style", "video_68abc123", "the same video, in anime style"),
        (
            "Remix 123e4567-e89b-12d3-a456-426614174000 with neon colours",
            "123e4567-e89b-12d3-a456-426614174000",
            "the same video, with neon colours",
        ),
        ("remix sora:abc-42", "sora:abc-42", "the original video, with fresh motion"),
    ],
)
def test_remix(text: str, remix: str, subject: str) -> None:
    ask = parse_request(text).video
    assert ask is not None and ask.remix_of == remix and ask.subject == subject


@pytest.mark.parametrize(
    ("text", "coin"),
    [
        ("make a video of a cat and coin it", True),
        ("video of a cat, autoClank please", True),
        ("a clip of a cat and deploy a token for it", True),
        ("a clip of a cat, no coin", False),
        ("a clip of a cat without a coin", False),
        ("a clip of a cat", None),
    ],
)
def test_coin_intent(text: str, coin: bool | None) -> None:
    ask = parse_request(text).video
    assert ask is not None and ask.coin is coin
    assert "coin" not in ask.subject and "token" not in ask.subject


def test_other_intents() -> None:
    task = "123e4567-e89b-12d3-a456-426614174000"
    assert parse_request("what's my budget?").kind == "budget"
    assert parse_request(f"status of {task}?").task_id == task
    assert parse_request(f"status of {task}?").kind == "status"
    assert parse_request(f"wait for {task}").kind == "wait"
    assert parse_request("hello there").kind == "help"
    assert parse_request("a one minute video of waves, let the server enhance it").video == VideoAsk(
        "waves", 60.0, auto_enhance=True
    )


def test_enhancement_follows_the_guide() -> None:
    prompt = enhance_prompt(VideoAsk("a corgi surfing at sunset", 8.0))
    assert prompt.startswith("A corgi surfing at sunset.")
    assert "tracking shot" in prompt  # camera, left open by the user
    assert "golden-hour" in prompt  # lighting detail for the sunset they named
    assert "cinematic" in prompt.lower()  # style, left open
    assert "8 seconds" in prompt and "no cuts" in prompt  # duration fit
    assert enhance_prompt(VideoAsk("a corgi surfing at sunset", 8.0)) == prompt  # deterministic


def test_enhancement_keeps_what_the_user_chose() -> None:
    prompt = enhance_prompt(VideoAsk("an anime drone shot of a city at night", 4.0))
    assert "tracking shot" not in prompt and "Photoreal" not in prompt
    assert "single steady" not in prompt  # the user chose the camera
    assert "One brief moment" in prompt
    long = enhance_prompt(VideoAsk("a fox", 30.0))
    assert "wide establishing shot" in long and "30 seconds" in long
    assert enhance_prompt(VideoAsk("a fox", None, image="https://x.test/a.png")).count("reference image") == 1
    assert enhance_prompt(VideoAsk("waves", 8.0, auto_enhance=True)) == "Waves."


def test_planner_is_labelled_and_binds_the_tools() -> None:
    planner = OfflinePlanner().bind_tools(imagine_tools())
    assert isinstance(planner, OfflinePlanner)
    assert set(planner.bound_tools) == {
        "quote_video",
        "generate_video",
        "wait_for_video",
        "video_status",
        "budget_status",
    }
    first = planner.invoke([HumanMessage("make me an 8-second video of a corgi surfing at sunset")])
    assert first.response_metadata["model_name"] == PLANNER_NAME
    assert "not an LLM" in first.response_metadata["planner"]
    assert [c["name"] for c in first.tool_calls] == ["quote_video", "budget_status"]
    assert first.tool_calls[0]["args"]["duration"] == 8.0
    quote = ToolMessage(
        '{"allowed":true,"price":"1.000000 USDC"}', tool_call_id=first.tool_calls[0]["id"], name="quote_video"
    )
    second = planner.invoke([HumanMessage("make me an 8-second video of a corgi"), first, quote])
    assert [c["name"] for c in second.tool_calls] == ["generate_video"]
    assert second.tool_calls[0]["args"] == first.tool_calls[0]["args"]
    help_text = planner.invoke([HumanMessage("hi")])
    assert isinstance(help_text, AIMessage) and help_text.content.endswith(PLANNER_LABEL)


def test_the_plugin_reads_durations_by_the_planners_rule() -> None:
    """One rule for durations: the plugin's fallback (no ``duration`` option) is the planner's parser."""
    from imagine_agent.agent.planner.intent import parse_duration
    from imagine_agent.plugin.actions import _duration_of

    for text, seconds in [
        ("make a 10-second video of a fox", 10.0),
        ("a ten seconds clip of rain", 10.0),
        ("a video of waves, half a minute long", 30.0),
        ("a 4 sec video of a cat", 4.0),
        ("a video of a cat", None),
    ]:
        assert parse_duration(text) == seconds, text
        assert _duration_of(text, {}) == seconds, text
        video = parse_request(text).video
        assert video is not None and video.duration == seconds, text
    assert _duration_of("a 10-second video", {"duration": "6"}) == 6.0  # the model's parameter comes first
