"""The ElizaOS-shaped plugin, driven standalone by a minimal host (tests/plugin/host.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagine_agent import plugin as plugin_module
from imagine_agent.client import request_hash
from imagine_agent.config import Settings
from imagine_agent.errors import ConfigurationError
from imagine_agent.plugin import ImagineVideoService, imagine_plugin, register
from imagine_agent.plugin import actions as plugin_actions
from imagine_agent.wallet import ApprovalRequest
from tests.embedded import SPEED
from tests.plugin.host import FakeRuntime

KEY = "0x" + "4c" * 32  # an operator key that must never surface anywhere


def test_public_api_is_pinned() -> None:
    assert plugin_module.__all__ == [
        "AGENT_CONFIG",
        "CONFIG_KEYS",
        "Action",
        "Evaluator",
        "ImagineVideoService",
        "Parameter",
        "Plugin",
        "Provider",
        "elizaos_plugin",
        "imagine_plugin",
        "register",
        "settings_from_runtime",
    ]


def test_plugin_shape() -> None:
    p = imagine_plugin
    assert p.name == "imagine" and p.description
    assert {"IMAGINE_BASE_URL", "IMAGINE_PRIVATE_KEY", "IMAGINE_DAILY_CAP", "IMAGINE_MAX_PER_CALL"} <= set(p.config)
    assert [a.name for a in p.actions] == ["GENERATE_VIDEO", "QUOTE_VIDEO", "VIDEO_STATUS"]
    assert [x.name for x in p.providers] == ["IMAGINE_BUDGET", "IMAGINE_PENDING_VIDEOS"]
    assert [e.name for e in p.evaluators] == ["IMAGINE_RECORD_DELIVERY"]
    assert p.services == [ImagineVideoService]
    assert ImagineVideoService.capability_description
    for action in p.actions:
        assert action.similes and action.examples and action.description
        for example in action.examples:
            assert example[-1]["content"]["actions"] == [action.name]


async def test_generate_video_pays_once_streams_progress_and_delivers(runtime: FakeRuntime) -> None:
    assert await runtime.valid_actions("Make a 2 second video of a fox running through snow") == ["GENERATE_VIDEO"]
    turn = await runtime.handle("Make a 2 second video of a fox running through snow")

    assert turn.action == "GENERATE_VIDEO" and turn.result is not None and turn.result["success"], turn.texts
    assert turn.texts[0].startswith('Buying a video of "a fox running through snow" for 0.25 USDC')
    assert any(t.startswith("Rendering…") for t in turn.texts), turn.texts  # progress streamed
    final = turn.replies[-1]
    assert "Your video is ready" in final["text"] and "Paid 0.25 USDC on base" in final["text"]
    assert "Sandbox: no real money moved" in final["text"]
    data = turn.result["data"]
    assert data["status"] == "completed" and Path(data["videoPath"]).stat().st_size > 0
    assert final["attachments"][0]["id"] == data["taskId"]

    service = runtime.get_service("imagine_video").service
    receipts = service.receipts()
    assert [(r.state.value, r.amount, r.task_id) for r in receipts] == [("paid", 250_000, data["taskId"])]

    # the evaluator recorded the delivery; the providers show it and the spend
    assert runtime.cache[f"imagine/videos/{data['taskId']}"]["videoPath"] == data["videoPath"]
    state = await runtime.compose_state({"content": {"text": "hi"}})
    assert "spent 0.25 USDC" in state["text"] and f"delivered {data['taskId']}" in state["text"]
    assert state["values"]["imagineDeliveredCount"] == 1 and state["values"]["imagineFrozen"] is False
    assert state["data"]["providers"]["IMAGINE_BUDGET"]["spent"] == "250000"


async def test_quote_signs_nothing(runtime: FakeRuntime) -> None:
    text = "How much would a 4 second video of a red balloon cost?"
    assert await runtime.valid_actions(text) == ["QUOTE_VIDEO"]
    turn = await runtime.handle(text)
    assert turn.texts == [
        'A video of "a red balloon" costs 0.50 USDC, within my budget. I can spend up to 5.00 USDC now.'
    ]
    assert turn.result is not None and turn.result["values"]["price"] == "500000"
    assert runtime.get_service("imagine_video").service.receipts() == []


async def test_video_status_reports_then_delivers(runtime: FakeRuntime) -> None:
    service = runtime.get_service("imagine_video").service
    outcome = await service.agenerate("a paper boat on a river", duration=2, wait=False)
    assert await runtime.valid_actions("Is my video ready?") == ["VIDEO_STATUS"]

    early = await runtime.handle("Is my video ready?")  # no id: the newest pending task
    assert early.result is not None and early.result["values"]["taskId"] == outcome.task_id
    assert early.result["values"]["status"] in ("queued", "processing", "completed")

    await service.await_task(outcome.task_id)
    done = await runtime.handle(f"status of {outcome.task_id}?")
    assert done.action == "VIDEO_STATUS" and done.result is not None
    assert done.result["values"]["status"] == "completed"
    assert done.replies[-1]["attachments"][0]["description"] == "a paper boat on a river"
    assert len(service.receipts()) == 1  # checking paid nothing more
    assert f"imagine/videos/{outcome.task_id}" in runtime.cache


async def test_refusals_are_clear_replies_and_pay_nothing(tmp_path: Path) -> None:
    host = FakeRuntime(
        {
            "IMAGINE_DATA_DIR": str(tmp_path),
            "IMAGINE_SANDBOX_SPEED": SPEED,
            "IMAGINE_MAX_PER_CALL": "0.3",
            "IMAGINE_APPROVAL_THRESHOLD": "0.2",
            "IMAGINE_PRIVATE_KEY": KEY,
        }
    )
    await register(host)
    try:
        service = host.get_service("imagine_video").service
        over = await host.handle("make a 4 second video of a storm")
        assert over.result is not None and not over.result["success"]
        assert over.texts[-1].startswith("I can't buy that video:") and "Nothing was paid" in over.texts[-1]

        asked = await host.handle("make a 2 second video of a storm")  # 0.25 USDC: over the 0.2 threshold
        assert asked.result is not None and "over the approval threshold of 0.200000 USDC" in asked.texts[-1]

        bad = await host.handle("make a video", options={"prompt": "a storm", "duration": 120})
        assert bad.result is not None and "duration must be a number of seconds" in bad.texts[-1]

        service.freeze("test")
        frozen = await host.handle("make a 1 second video of a storm")
        assert frozen.result is not None and not frozen.result["success"] and "kill switch" in frozen.texts[-1]
        assert service.receipts() == []

        everything = [str(t.replies) + str(t.result) for t in (over, asked, bad, frozen)]
        everything.append(str(await host.compose_state({"content": {"text": ""}})))
        assert not any(KEY[2:] in text for text in everything)
    finally:
        await host.stop()


async def test_operator_approver_lets_a_payment_over_the_threshold_through(tmp_path: Path) -> None:
    asked: list[ApprovalRequest] = []

    def approve(request: ApprovalRequest) -> bool:
        asked.append(request)
        return True

    host = FakeRuntime(
        {
            "IMAGINE_DATA_DIR": str(tmp_path),
            "IMAGINE_SANDBOX_SPEED": SPEED,
            "IMAGINE_APPROVAL_THRESHOLD": "0.1",
            "IMAGINE_APPROVER": approve,
        }
    )
    await register(host)
    try:
        turn = await host.handle("make a 1 second video of a comet")
        assert turn.result is not None and turn.result["success"], turn.texts
        assert [r.amount for r in asked] == [125_000]
    finally:
        await host.stop()


async def test_auto_clank_follows_operator_policy(tmp_path: Path) -> None:
    host = FakeRuntime(
        {"IMAGINE_DATA_DIR": str(tmp_path), "IMAGINE_SANDBOX_SPEED": SPEED, "IMAGINE_AUTO_CLANK": "always"}
    )
    await register(host)
    try:
        service = host.get_service("imagine_video").service
        turn = await host.handle("make a 1 second video of a coin", options={"autoClank": False})
        assert turn.result is not None and turn.result["success"], turn.texts
        assert f"the paying wallet {service.wallet.address} is its creator" in turn.texts[-1]
        request, _ = service.build_request("a coin", duration=1.0, auto_clank=True)
        [paid] = service.receipts()
        assert paid.request_hash == request_hash(service.client.base_url, request, None)
    finally:
        await host.stop()
    never = Settings(data_dir=tmp_path, auto_clank="never")
    assert plugin_actions._auto_clank(never, {"autoClank": True}) is False


async def test_ask_policy_deploys_a_coin_only_with_the_operators_approval(tmp_path: Path) -> None:
    """Under IMAGINE_AUTO_CLANK=ask the model's autoClank alone never deploys a coin: IMAGINE_APPROVER decides
    (without one, the operator's approvals queue)."""
    asked: list[ApprovalRequest] = []
    answers = [False, True]

    def approve(request: ApprovalRequest) -> bool:
        asked.append(request)
        return answers.pop(0)

    for approver in (None, approve):
        settings = {
            "IMAGINE_DATA_DIR": str(tmp_path / str(approver is None)),
            "IMAGINE_SANDBOX_SPEED": SPEED,
            "IMAGINE_AUTO_CLANK": "ask",
            **({"IMAGINE_APPROVER": approver} if approver else {}),
        }
        host = FakeRuntime(settings)
        await register(host)
        try:
            service = host.get_service("imagine_video").service
            refused = await host.handle(
                "make a 1 second video of a coin and coin it", options={"autoClank": True, "prompt": "a coin"}
            )
            assert refused.result is not None and not refused.result["success"]
            assert "'ask'" in refused.texts[-1] and service.receipts() == []
            if approver is None:  # no callback: the coin waits in the operator's approvals queue
                assert refused.result["data"]["code"] == "awaiting_approval" and "queued" in refused.texts[-1]
                continue
            assert "Nothing was paid" in refused.texts[-1]
            coined = await host.handle(
                "make a 1 second video of a coin and coin it", options={"autoClank": True, "prompt": "a coin"}
            )
            assert coined.result is not None and coined.result["success"], coined.texts
            assert f"the paying wallet {service.wallet.address} is its creator" in coined.texts[-1]
            request, _ = service.build_request("a coin", duration=1.0, auto_clank=True)
            [paid] = service.receipts()
            assert paid.request_hash == request_hash(service.client.base_url, request, None)
            plain = await host.handle("make a 1 second video of a cup")  # no coin asked for: nobody is asked
            assert plain.result is not None and plain.result["success"]
        finally:
            await host.stop()
    assert len(asked) == 2 and all("coin" in r.description and "creator" in r.description for r in asked)


async def test_chit_chat_and_price_questions_never_pay_even_when_generate_is_chosen(runtime: FakeRuntime) -> None:
    """The runtime may run GENERATE_VIDEO for any message (elizaos caches state per room): the handler re-checks."""
    chat = await runtime.handle("thanks, that was lovely!", action="GENERATE_VIDEO", options={"prompt": "thanks"})
    assert chat.result is not None and not chat.result["success"] and "Nothing was paid" in chat.texts[-1]
    price = await runtime.handle(
        "how much would a 4 second video of a kite cost?",
        action="GENERATE_VIDEO",
        options={"parameters": {"prompt": "a kite", "duration": 4}},
    )
    assert price.result is not None and price.result["data"]["actionName"] == "QUOTE_VIDEO"
    assert 'A video of "a kite" costs 0.50 USDC' in price.texts[-1]
    model = await runtime.handle("make a video of a kite", action="GENERATE_VIDEO", options={"model": "veo-9"})
    assert model.result is not None and not model.result["success"] and "veo-9" in model.texts[-1]
    assert runtime.get_service("imagine_video").service.receipts() == []


async def test_bad_settings_fail_at_init_without_echoing_values(tmp_path: Path) -> None:
    host = FakeRuntime({"IMAGINE_DATA_DIR": str(tmp_path), "IMAGINE_DAILY_CAP": "lots"})
    with pytest.raises(ConfigurationError, match="IMAGINE_DAILY_CAP") as info:
        await register(host)
    assert "lots" not in str(info.value)


async def test_actions_without_the_service_say_so() -> None:
    host = FakeRuntime()
    host.actions = list(imagine_plugin.actions)
    assert await host.valid_actions("make a video of a cat") == []
    turn = await host.handle("make a video of a cat", action="GENERATE_VIDEO")
    assert turn.result is not None and "not running" in turn.texts[-1]


async def test_without_a_callback_approver_the_operator_queue_decides(tmp_path: Path) -> None:
    """No IMAGINE_APPROVER: over the threshold the payment waits for the operator; approved, it goes through,
    and a budget window crossing 80 % is narrated."""
    host = FakeRuntime(
        {
            "IMAGINE_DATA_DIR": str(tmp_path),
            "IMAGINE_SANDBOX_SPEED": SPEED,
            "IMAGINE_APPROVAL_THRESHOLD": "0.1",
            "IMAGINE_DAILY_CAP": "0.3",
        }
    )
    await register(host)
    try:
        service = host.get_service("imagine_video").service
        asked = await host.handle("make a 2 second video of a comet")
        assert asked.result is not None and not asked.result["success"]
        data = asked.result["data"]
        assert data["code"] == "awaiting_approval" and "queued as approval" in asked.texts[-1]
        assert service.receipts() == []
        (entry,) = service.ledger.approvals()
        assert entry.id == data["approvalId"] and entry.requester == "plugin"
        service.ledger.decide_approval(entry.id, approve=True, decided_by="console", ttl=600)
        turn = await host.handle("make a 2 second video of a comet")
        assert turn.result is not None and turn.result["success"], turn.texts
        assert "Budget warning: the daily budget is past 80 %" in turn.texts[-1]
        assert [p.amount for p in service.receipts()] == [250_000]
    finally:
        await host.stop()


async def test_the_plugin_takes_a_listed_model_and_narrates_media_page_and_coin(tmp_path: Path) -> None:
    """Issue 13: ``videoModel`` reaches the create body; the reply shows the media page and the coin."""
    host = FakeRuntime(
        {"IMAGINE_DATA_DIR": str(tmp_path), "IMAGINE_SANDBOX_SPEED": SPEED, "IMAGINE_AUTO_CLANK": "always"}
    )
    await register(host)
    try:
        service = host.get_service("imagine_video").service
        service.sandbox.state.config.rich_results = True
        turn = await host.handle("make a 2 second video of a heron", options={"videoModel": "sora-2"})
        assert turn.result is not None and turn.result["success"], turn.texts
        (settled,) = service.sandbox.state.settlements()
        assert service.sandbox.state.job(settled.task_id).model == "sora-2" and settled.amount == 300_000
        final = turn.texts[-1]
        assert f"Media page: {service.client.base_url}/media/{settled.task_id}" in final
        coin = turn.result["data"]["coin"]
        assert coin["address"] in final and f"the paying wallet {service.wallet.address} is its creator" in final
    finally:
        await host.stop()
