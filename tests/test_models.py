"""Wire models: the spec's bodies round-trip; bad input is refused with a clear message."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagine_agent.errors import InvalidRequestError
from imagine_agent.models import (
    MAX_PROMPT_CHARS,
    CreateRequest,
    TaskStatus,
    check_image_host,
    validate_task_id,
)

COMPLETED = {
    "status": "completed",
    "result": {
        "generation": {
            "text": "Generated description text",
            "image": "https://storj.onbons.ai/preview-image-url",
            "video": {"url": "https://storj.onbons.ai/generated-video-url"},
            "templateName": "video",
            "agentId": "7d3c1f0e-7a4f-4c59-9b7e-2a1c3d4e5f60",
        },
        "templateData": {"duration": 8},
    },
}
PNG_1PX = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


@pytest.mark.parametrize(
    "body",
    [
        {"status": "queued"},
        {"status": "processing", "progress": 0},
        {"status": "processing", "progress": 42},
        COMPLETED,
        {"status": "failed", "error": "model refused"},
        {"status": "not_found"},
    ],
)
def test_every_spec_status_round_trips(body: dict) -> None:
    status = TaskStatus.model_validate(body)
    assert status.to_wire() == body
    assert status.done == (body["status"] in ("completed", "failed", "not_found"))


def test_completed_exposes_links() -> None:
    status = TaskStatus.model_validate(COMPLETED)
    assert status.video_url == "https://storj.onbons.ai/generated-video-url"
    assert status.preview_url == "https://storj.onbons.ai/preview-image-url"


def test_spec_create_body_with_object_and_string_template_data() -> None:
    body = {
        "prompt": "A futuristic character waves in a neon cyberpunk city",
        "templateData": {
            "videoModel": "sora",
            "duration": 8,
            "image": "https://example.com/input_reference.jpg",
            "autoClank": False,
            "autoEnhance": False,
        },
    }
    as_object = CreateRequest.model_validate(body)
    as_string = CreateRequest.model_validate({**body, "templateData": json.dumps(body["templateData"])})
    assert as_object == as_string
    assert as_object.body(template_data_as_string=False) == body
    assert json.loads(as_object.body()["templateData"]) == body["templateData"]


def test_unknown_template_fields_are_kept() -> None:
    request = CreateRequest.model_validate({"prompt": "x", "templateData": {"seed": 7, "duration": 4}})
    assert request.body(template_data_as_string=False)["templateData"]["seed"] == 7


def test_defaults_are_the_spec_defaults_and_the_model_is_the_servers_default() -> None:
    td = CreateRequest.build("a cat", duration=8).template_data
    assert td is not None
    assert (td.video_model, td.duration, td.auto_clank, td.auto_enhance) == (None, 8, False, False)
    assert (
        "videoModel" not in CreateRequest.build("a cat", duration=8).body(template_data_as_string=False)["templateData"]
    )


@pytest.mark.parametrize("model", ["xai-grok-imagine", "sora-2", "sora-2-pro", "fal-kling-o3", "veo"])
def test_any_model_name_is_accepted_by_the_model_the_server_decides(model: str) -> None:
    body = CreateRequest.build("a cat", video_model=model).body(template_data_as_string=False)
    assert body["templateData"]["videoModel"] == model


@pytest.mark.parametrize("video", [{"url": "https://cdn.example/v.mp4"}, "https://cdn.example/v.mp4"])
def test_results_parse_in_the_seed_shape_and_todays(video: object) -> None:
    status = TaskStatus.model_validate(
        {
            "status": "completed",
            "result": {
                "generation": {"video": video, "image": "https://cdn.example/p.png"},
                "url": "https://imagine.example/post/1",
                "txHash": "0x" + "ab" * 32,
                "token": {
                    "chain": "base",
                    "address": "0x" + "cd" * 20,
                    "external": False,
                    "metadata": {"symbol": "CAT", "name": "Cat", "image": "https://cdn.example/p.png"},
                },
            },
        }
    )
    assert status.video_url == "https://cdn.example/v.mp4"
    assert status.media_url == "https://imagine.example/post/1"
    assert status.coin is not None and (status.coin.address, status.coin.symbol) == ("0x" + "cd" * 20, "CAT")
    assert status.transaction == "0x" + "ab" * 32
    assert status.to_wire()["result"]["generation"]["video"] == video  # the wire comes back as it arrived


def test_progress_may_come_as_metadata_percent() -> None:
    status = TaskStatus.model_validate({"status": "processing", "metadata": {"percent": 42}})
    assert status.progress == 42
    assert "progress" not in status.to_wire()
    assert TaskStatus.model_validate({"status": "processing", "progress": 7, "metadata": {"percent": 42}}).progress == 7
    assert TaskStatus.model_validate({"status": "processing", "metadata": {"percent": "x"}}).progress is None


@pytest.mark.parametrize(
    ("prompt", "options", "message"),
    [
        ("", {}, "prompt is empty"),
        ("   ", {}, "prompt is empty"),
        ("x" * (MAX_PROMPT_CHARS + 1), {}, "limit is"),
        ("bell\x07", {}, "control characters"),
        ("ok", {"duration": 0}, "duration"),
        ("ok", {"duration": 61}, "duration"),
        ("ok", {"duration": float("nan")}, "duration"),
        ("ok", {"video_model": "../veo"}, "video_model"),
        ("ok", {"video_model": ""}, "video_model"),
        ("ok", {"image": "ftp://example.com/a.png"}, "http(s)"),
        ("ok", {"image": "file:///etc/passwd"}, "http(s)"),
        ("ok", {"image": "data:text/plain;base64,aGk="}, "not an image type"),
        ("ok", {"image": "data:image/png;base64,@@@"}, "not valid base64"),
        ("ok", {"image": "data:image/png,rawbytes"}, "data URL"),
        ("ok", {"sora_video_id": "../../etc"}, "soraVideoId"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(prompt: str, options: dict, message: str) -> None:
    with pytest.raises(InvalidRequestError, match="invalid request") as info:
        CreateRequest.build(prompt, **options)
    assert message in str(info.value)


def test_good_images() -> None:
    CreateRequest.build("ok", image=f"data:image/png;base64,{PNG_1PX}")
    CreateRequest.build("ok", image="https://example.com/a.jpg")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/a.png",
        "http://localhost:8000/a.png",
        "http://10.0.0.5/x.jpg",
        "http://192.168.1.2/x.jpg",
        "http://169.254.169.254/latest",
        "http://[::1]/a.png",
        "http://printer.local/a.png",
    ],
)
def test_private_image_hosts_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(InvalidRequestError, match="cannot reach"):
        check_image_host(url, allow_private=False)
    check_image_host(url, allow_private=True)


def test_public_image_hosts_pass() -> None:
    check_image_host("https://example.com/a.png", allow_private=False)
    check_image_host("https://8.8.8.8/a.png", allow_private=False)


@pytest.mark.parametrize("task_id", ["", "../x", "a/b", "a b", "x" * 200, "?q=1"])
def test_bad_task_ids(task_id: str) -> None:
    with pytest.raises(InvalidRequestError):
        validate_task_id(task_id)


def test_uuid_task_id_is_fine() -> None:
    assert validate_task_id("123e4567-e89b-12d3-a456-426614174000")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=20,
)


@given(json_values)
def test_template_data_parser_takes_any_json(value: object) -> None:
    from pydantic import ValidationError

    for td in (value, json.dumps(value)):
        try:
            CreateRequest.model_validate({"prompt": "p", "templateData": td})
        except ValidationError:
            pass


@given(st.text(max_size=300))
def test_image_parser_takes_any_text(value: str) -> None:
    try:
        CreateRequest.build("p", image=value)
    except InvalidRequestError:
        pass


@given(json_values)
def test_status_parser_takes_any_json(value: object) -> None:
    from pydantic import ValidationError

    try:
        TaskStatus.model_validate(value)
    except ValidationError:
        pass
