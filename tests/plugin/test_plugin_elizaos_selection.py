"""The plugin under the real ``elizaos`` runtime's own selection path (its message service, with a scripted
model in place of an LLM): one room, a video request, a price question and chit-chat -> one payment, for
the video, with the model's parameters."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from tests.embedded import SPEED
from tests.optional import ELIZAOS_VERSION, require_elizaos

elizaos = require_elizaos(ELIZAOS_VERSION)  # skipped without it; under CI=true, a failure

ROOM = "22222222-2222-2222-2222-222222222222"
USER = "33333333-3333-3333-3333-333333333333"


class ScriptedModel:
    """Answers the runtime's structured prompt like an LLM would: the action and params it is scripted with,
    echoing the prompt's checkpoint codes (elizaos validates them)."""

    def __init__(self, *turns: tuple[str, dict[str, Any] | None]) -> None:
        self.turns = list(turns)
        self.prompts: list[str] = []

    async def __call__(self, runtime: Any, params: dict[str, Any]) -> str:
        prompt = str(params["prompt"])
        self.prompts.append(prompt)
        codes = {
            k: m.group(1)
            for k in ("initial", "middle", "end")
            if (m := re.search(k + r" code: ([0-9a-f-]{36})", prompt))
        }
        action, chosen = self.turns.pop(0)
        checks = "".join(f"<{p}_{k}_code>{v}</{p}_{k}_code>" for p in ("one", "two") for k, v in codes.items())
        params_xml = f"<params>{json.dumps(chosen)}</params>" if chosen else ""
        return (
            f"<response>{checks}<thought>scripted</thought><actions>{action}</actions>{params_xml}"
            "<text>On it.</text></response>"
        )


async def test_one_room_video_price_question_and_chit_chat_pay_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from elizaos.types import Content, Memory

    from imagine_agent.plugin import register

    caplog.set_level(logging.INFO)
    prompt = "A lighthouse in thick fog at dusk, its beam sweeping slowly, one slow push-in"
    # The model picks GENERATE_VIDEO every time, as a model that misreads the room might: the handler
    # must still pay only for the message that asks for a video.
    model = ScriptedModel(
        ("GENERATE_VIDEO", {"GENERATE_VIDEO": {"prompt": prompt, "duration": 2}}),
        ("GENERATE_VIDEO", {"GENERATE_VIDEO": {"prompt": "a kite over the dunes", "duration": 4}}),
        ("GENERATE_VIDEO", {"GENERATE_VIDEO": {"prompt": "thanks"}}),
    )
    runtime = elizaos.AgentRuntime(
        character=elizaos.Character(name="VideoBot", bio="Makes short videos."),
        settings={"IMAGINE_DATA_DIR": str(tmp_path), "IMAGINE_SANDBOX_SPEED": SPEED},
    )
    await runtime.initialize()
    await register(runtime)
    runtime.register_model("TEXT_LARGE", model, "scripted")
    runtime.register_model("TEXT_SMALL", model, "scripted")
    replies: list[Any] = []

    async def callback(content: Any) -> list[Any]:
        replies.append(content)
        return []

    results: list[Any] = []
    try:
        generate = next(a for a in runtime.actions if a.name == "GENERATE_VIDEO")
        assert [p.name for p in generate.parameters] == ["prompt", "duration", "model", "image", "autoClank"]
        for i, text in enumerate(
            [
                "Make a 2 second video of a lighthouse in fog",
                "how much would a 4 second video of a kite cost?",
                "thanks, that was lovely!",
            ]
        ):
            message = Memory(
                id=f"1111111{i}-1111-1111-1111-111111111111", room_id=ROOM, entity_id=USER, content=Content(text=text)
            )
            outcome = await runtime.message_service.handle_message(runtime, message, callback)
            assert outcome.did_respond
            [result] = runtime.get_action_results(message.id)
            results.append(result)
        assert "GENERATE_VIDEO" in model.prompts[0] and "prompt" in model.prompts[0]  # the parameters are offered

        service = runtime.get_service("imagine_video").service
        [payment] = service.receipts()
        assert payment.amount == 250_000 and payment.state.value == "paid"  # 2 s, as the model chose
        [job] = [service.sandbox.state.job(t.task_id) for t in service.ledger.tasks()]
        assert job.prompt == prompt and job.duration == 2  # the model's prompt, not the message text

        video, price, chat = results
        assert video.success and Path(video.data["videoPath"]).is_file()
        assert price.success and price.data["actionName"] == "QUOTE_VIDEO" and price.data["amount"] == "500000"
        assert "costs 0.50 USDC" in price.text
        assert not chat.success and "Nothing was paid" in chat.text
        assert not [r for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]  # quiet logs
    finally:
        await runtime.stop()


def test_registry_metadata() -> None:
    from imagine_agent.plugin import AGENT_CONFIG, CONFIG_KEYS, imagine_plugin

    assert imagine_plugin.agent_config is AGENT_CONFIG and AGENT_CONFIG["pluginType"] == "elizaos:plugin:1.0.0"
    params = AGENT_CONFIG["pluginParameters"]
    assert set(params) == set(CONFIG_KEYS) and all(p["description"] for p in params.values())
    assert params["IMAGINE_PRIVATE_KEY"]["sensitive"] is True and params["IMAGINE_DAILY_CAP"]["sensitive"] is False
    generate = AGENT_CONFIG["actions"]["GENERATE_VIDEO"]["parameters"]
    assert {p["name"]: p["schema"]["type"] for p in generate} == {
        "prompt": "string",
        "duration": "number",
        "model": "string",
        "image": "string",
        "autoClank": "boolean",
    }
    json.dumps(AGENT_CONFIG)  # publishable as JSON
