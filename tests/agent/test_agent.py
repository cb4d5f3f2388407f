"""The agent end to end on the embedded sandbox: with the offline planner and with scripted models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
import pytest
from langchain_core.exceptions import ModelAPIError
from langchain_core.messages import AIMessage
from langgraph.types import Command

from imagine_agent.agent import VideoReport, build_agent
from imagine_agent.planner import PLANNER_LABEL
from imagine_agent.service import ImagineService
from imagine_agent.tools import ImagineContext

from .conftest import RecordingPlanner, body, call, model_turns, scripted, thread, tool_results, user

CORGI = "make me an 8-second video of a corgi surfing at sunset"
APPROVE = Command(resume={"decisions": [{"type": "approve"}]})
REJECT = Command(resume={"decisions": [{"type": "reject", "message": "too expensive"}]})


def _reply(result: dict[str, Any]) -> str:
    return str(result["messages"][-1].content)


def _with(context: ImagineContext, **changes: Any) -> ImagineContext:
    return ImagineContext(**{**context.__dict__, **changes})


# ------------------------------------------------------------------------------------- planner flows


def test_happy_path_delivers_a_paid_video(context: ImagineContext) -> None:
    service = context.service
    agent = build_agent(service=service)
    result = agent.invoke(user(CORGI), thread(), context=context)
    generated = body(tool_results(result["messages"], "generate_video")[0])
    video = Path(generated["videoPath"])
    assert video.parent == context.output_dir and video.stat().st_size > 0
    with av.open(str(video)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    reply = _reply(result)
    for fact in (
        generated["taskId"],
        str(video),
        generated["paid"]["transaction"],
        "1.000000 USDC",
        "8-second",
        "largest next payment",
        "no real money moved",
        PLANNER_LABEL,
    ):
        assert fact in reply
    assert "Coin" not in reply
    (payment,) = service.receipts()
    assert payment.amount == 1_000_000 and payment.task_id == generated["taskId"]
    wire = service.requests.paid_creates  # type: ignore[attr-defined]
    assert len(wire) == 1 and wire[0]["templateData"]["duration"] == 8
    assert "golden-hour" in wire[0]["prompt"]  # the prompt was enhanced before paying


@pytest.mark.parametrize(
    "question",
    [
        "how much is a 4 second video of a kite?",
        "what would an 8-second clip of rain on a window cost",
        "quote me a video of a lighthouse",
    ],
)
def test_a_price_question_quotes_and_never_pays(question: str, context: ImagineContext) -> None:
    result = build_agent(service=context.service).invoke(user(question), thread(), context=context)
    assert not tool_results(result["messages"], "generate_video")
    assert tool_results(result["messages"], "quote_video")
    assert context.service.receipts() == []
    assert context.service.requests.paid_creates == []  # type: ignore[attr-defined]
    reply = _reply(result)
    assert "nothing was signed or paid" in reply and "USDC" in reply


def test_model_calls_per_video_and_waiting_inside_the_tool(context: ImagineContext) -> None:
    planner = RecordingPlanner()
    agent = build_agent(planner, context.service)
    result = agent.invoke(user(CORGI), thread(), context=context)
    polls = context.service.requests.status_polls  # type: ignore[attr-defined]
    assert len(planner.seen) == 3 == len(model_turns(result["messages"]))
    assert polls >= 3 > 0  # several polls, none of them through the model
    assert not tool_results(result["messages"], "video_status")
    assert [c["name"] for m in model_turns(result["messages"]) for c in m.tool_calls] == [
        "quote_video",
        "budget_status",
        "generate_video",
    ]


async def test_async_stream_carries_progress(context: ImagineContext) -> None:
    agent = build_agent(service=context.service)
    events: list[dict[str, Any]] = []
    final: list[Any] = []
    async for mode, chunk in agent.astream(user(CORGI), thread(), context=context, stream_mode=["custom", "values"]):
        (events if mode == "custom" else final).append(chunk)
    stages = [e["stage"] for e in events]
    assert stages[0] == "paid" and stages[-1] == "downloaded" and stages.count("status") >= 2
    progress = [e["progress"] for e in events if e["stage"] == "status" and e["progress"] is not None]
    assert progress == sorted(progress) and progress[-1] == 100
    assert "is ready" in final[-1]["messages"][-1].content


def test_budget_refusal_is_explained_and_nothing_is_paid(context: ImagineContext) -> None:
    agent = build_agent(service=context.service)
    result = agent.invoke(user("make a 60-second video of a storm over the sea"), thread(), context=context)
    reply = _reply(result)
    assert reply.startswith("I did not pay for this video")
    assert "per-call cap" in reply and "7.500000 USDC" in reply and "operator" in reply
    assert len(model_turns(result["messages"])) == 2
    assert not tool_results(result["messages"], "generate_video")
    assert context.service.receipts() == [] and context.service.requests.paid_creates == []  # type: ignore[attr-defined]


def test_approval_approve(context: ImagineContext) -> None:
    agent = build_agent(service=context.service)
    config = thread()
    paused = agent.invoke(user("make me a 20-second video of a corgi surfing"), config, context=context)
    (interrupt,) = paused["__interrupt__"]
    (action,) = interrupt.value["action_requests"]
    assert action["name"] == "generate_video"
    assert "2.500000 USDC" in action["description"] and "approval threshold" in action["description"]
    assert context.service.receipts() == []
    done = agent.invoke(APPROVE, config, context=context)
    (payment,) = context.service.receipts()
    assert payment.amount == 2_500_000
    assert "20-second video" in _reply(done) and payment.transaction in _reply(done)
    assert len(model_turns(done["messages"])) == 3


def test_approval_reject(context: ImagineContext) -> None:
    agent = build_agent(service=context.service)
    config = thread()
    agent.invoke(user("make me a 20-second video of a corgi surfing"), config, context=context)
    done = agent.invoke(REJECT, config, context=context)
    reply = _reply(done)
    assert reply.startswith("Not paid") and "too expensive" in reply and "2.500000 USDC" in reply
    assert context.service.receipts() == [] and context.service.requests.paid_creates == []  # type: ignore[attr-defined]


def test_failed_generation_is_narrated(context: ImagineContext) -> None:
    context.service.sandbox.state.add_faults({"kind": "fail", "params": {"at": 0.3}})
    agent = build_agent(service=context.service)
    result = agent.invoke(user(CORGI), thread(), context=context)
    reply = _reply(result)
    (payment,) = context.service.receipts()
    assert reply.startswith("The generation failed")
    assert payment.transaction in reply and payment.task_id in reply and "did not retry" in reply
    assert context.service.ledger.get_task(payment.task_id).status == "failed"


@pytest.mark.parametrize(
    ("policy", "message", "coin"),
    [
        ("never", CORGI, False),
        ("agent", CORGI + " and coin it", True),
        ("agent", CORGI, False),
        ("always", CORGI, True),
    ],
)
def test_autoclank_policy(context: ImagineContext, policy: str, message: str, coin: bool) -> None:
    agent = build_agent(service=context.service)
    result = agent.invoke(user(message), thread(), context=_with(context, auto_clank=policy))
    (wire,) = context.service.requests.paid_creates  # type: ignore[attr-defined]
    assert wire["templateData"].get("autoClank", False) is coin
    reply = _reply(result)
    address = context.service.wallet.address
    assert (f"paying wallet {address} is the coin's creator and earns its trading fees" in reply) is coin


def test_autoclank_ask_pauses_for_a_human(context: ImagineContext) -> None:
    agent = build_agent(service=context.service)
    ask = _with(context, auto_clank="ask")
    config = thread()
    paused = agent.invoke(user(CORGI + " and coin it"), config, context=ask)
    (interrupt,) = paused["__interrupt__"]
    description = interrupt.value["action_requests"][0]["description"]
    assert "coin" in description and "'ask'" in description and "1.000000 USDC" in description
    done = agent.invoke(APPROVE, config, context=ask)
    assert context.service.requests.paid_creates[0]["templateData"]["autoClank"] is True  # type: ignore[attr-defined]
    assert "is the coin's creator" in _reply(done)

    config = thread()
    agent.invoke(user("make me a 5-second video of a cat and coin it"), config, context=ask)
    edit = {
        "type": "edit",
        "edited_action": {
            "name": "generate_video",
            "args": {**paused["messages"][-1].tool_calls[0]["args"], "duration": 5, "auto_clank": False},
        },
    }
    done = agent.invoke(Command(resume={"decisions": [edit]}), config, context=ask)
    assert context.service.requests.paid_creates[1]["templateData"].get("autoClank", False) is False  # type: ignore[attr-defined]
    assert "creator" not in _reply(done)

    plain = agent.invoke(user(CORGI), thread(), context=ask)  # no coin asked: nothing to approve
    assert "__interrupt__" not in plain and "is ready" in _reply(plain)


def test_image_to_video(context: ImagineContext) -> None:
    agent = build_agent(service=context.service)
    result = agent.invoke(
        user("animate https://example.com/cat.png so the cat waves, 5 seconds"), thread(), context=context
    )
    (wire,) = context.service.requests.paid_creates  # type: ignore[attr-defined]
    assert wire["templateData"]["image"] == "https://example.com/cat.png"
    assert wire["templateData"]["duration"] == 5
    assert "reference image" in wire["prompt"] and wire["prompt"].startswith("The cat waves.")
    assert "is ready" in _reply(result)


def test_remix(context: ImagineContext) -> None:
    agent = build_agent(service=context.service)
    result = agent.invoke(user("remix video_68abc123 in anime style"), thread(), context=context)
    (wire,) = context.service.requests.paid_creates  # type: ignore[attr-defined]
    assert wire["templateData"]["soraVideoId"] == "video_68abc123"
    assert "anime" in wire["prompt"] and "Photoreal" not in wire["prompt"]
    assert "is ready" in _reply(result)


def test_budget_and_status_questions(context: ImagineContext) -> None:
    agent = build_agent(service=context.service)
    first = agent.invoke(user(CORGI), thread(), context=context)
    task = body(tool_results(first["messages"], "generate_video")[0])["taskId"]
    status = agent.invoke(user(f"status of {task}?"), thread(), context=context)
    assert f"Task {task}: completed" in _reply(status)
    budget = agent.invoke(user("what's my budget?"), thread(), context=context)
    assert "spent 1.000000 USDC" in _reply(budget) and "set by the operator" in _reply(budget)
    assert len(context.service.receipts()) == 1


def test_structured_final_answer(context: ImagineContext) -> None:
    agent = build_agent(service=context.service, response_format=VideoReport)
    result = agent.invoke(user(CORGI), thread(), context=context)
    report = result["structured_response"]
    assert isinstance(report, VideoReport)
    (payment,) = context.service.receipts()
    assert report.task_id == payment.task_id and report.transaction == payment.transaction
    assert report.status == "completed" and report.video_path and Path(report.video_path).exists()
    assert PLANNER_LABEL in report.reply


# ------------------------------------------------------------------------------------- scripted models

VIDEO = {"prompt": "A red fox trots through fresh snow, tracking shot, soft dawn light.", "duration": 4}


def test_scripted_model_cannot_raise_caps_or_set_a_price(context: ImagineContext) -> None:
    caps_before = context.service.budget().caps
    model = scripted(
        call("generate_video", **VIDEO, max_per_call="1000", price="0.000001"),
        call("generate_video", **{**VIDEO, "duration": 60}),
        "Sorry: the operator's caps stand.",
    )
    result = build_agent(model, context.service).invoke(user("make it whatever it costs"), thread(), context=context)
    first, second = tool_results(result["messages"], "generate_video")
    assert first.status == "error" and "max_per_call" in first.content and "operator" in first.content
    assert second.status == "error" and body(second)["error"] == "BudgetExceededError"
    assert context.service.receipts() == [] and context.service.budget().caps == caps_before


def test_scripted_model_skipping_the_quote_still_needs_approval(context: ImagineContext) -> None:
    model = scripted(call("generate_video", **{**VIDEO, "duration": 24}), "done")
    agent = build_agent(model, context.service)
    config = thread()
    paused = agent.invoke(user("go"), config, context=context)
    assert "3.000000 USDC" in paused["__interrupt__"][0].value["action_requests"][0]["description"]
    agent.invoke(APPROVE, config, context=context)
    assert [p.amount for p in context.service.receipts()] == [3_000_000]


def test_reused_call_ids_get_a_fresh_approval_decision(context: ImagineContext) -> None:
    cheap, pricey = call("generate_video", **VIDEO), call("generate_video", **{**VIDEO, "duration": 24})
    pricey.tool_calls[0]["id"] = cheap.tool_calls[0]["id"]  # some servers number calls per turn: "call_0"
    agent = build_agent(scripted(cheap, pricey, "done"), context.service)
    config = thread()
    paused = agent.invoke(user("two videos"), config, context=context)
    assert [p.amount for p in context.service.receipts()] == [500_000]
    assert "3.000000 USDC" in paused["__interrupt__"][0].value["action_requests"][0]["description"]
    agent.invoke(REJECT, config, context=context)
    assert [p.amount for p in context.service.receipts()] == [500_000]


def test_scripted_coin_is_always_disclosed(context: ImagineContext) -> None:
    model = scripted(call("generate_video", **VIDEO, auto_clank=True), "Here is your fox video!")
    result = build_agent(model, context.service).invoke(
        user("fox, coin it"), thread(), context=_with(context, auto_clank="agent")
    )
    reply = _reply(result)
    assert reply.startswith("Here is your fox video!")
    assert f"the paying wallet {context.service.wallet.address} is its creator and earns its trading fees" in reply


def test_scripted_model_never_coins_under_never(context: ImagineContext) -> None:
    model = scripted(call("generate_video", **VIDEO, auto_clank=True), "ok")
    result = build_agent(model, context.service).invoke(user("x"), thread(), context=context)
    assert body(tool_results(result["messages"], "generate_video")[0])["request"]["autoClank"] is False
    assert context.service.requests.paid_creates[0]["templateData"].get("autoClank", False) is False  # type: ignore[attr-defined]


def test_limits_stop_a_runaway_model(context: ImagineContext) -> None:
    model = scripted(*[call("budget_status") for _ in range(20)])
    result = build_agent(model, context.service, model_call_limit=4).invoke(user("x"), thread(), context=context)
    assert len(model.seen) == 4 and len(tool_results(result["messages"], "budget_status")) == 4

    twice = scripted(call("generate_video", **VIDEO), call("generate_video", **{**VIDEO, "duration": 5}), "done")
    result = build_agent(twice, context.service, generate_limit=1).invoke(user("x"), thread(), context=context)
    assert len(context.service.receipts()) == 1
    blocked = tool_results(result["messages"], "generate_video")[-1]
    assert blocked.status == "error" and "limit" in str(blocked.content).lower()


def test_transient_model_errors_are_retried(context: ImagineContext) -> None:
    class Flaky(type(scripted())):  # type: ignore[misc]
        failures: int = 1

        def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
            if self.failures:
                self.failures -= 1
                raise ModelAPIError("503 from the provider")
            return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)

    model = Flaky(messages=iter([call("budget_status"), AIMessage(content="budget read")]))
    result = build_agent(model, context.service).invoke(user("budget?"), thread(), context=context)
    assert _reply(result) == "budget read" and len(model.seen) == 2


def test_model_may_use_wait_for_a_long_job(context: ImagineContext) -> None:
    slow = _with(context, wait_seconds=0.001)
    first = build_agent(service=context.service).invoke(user(CORGI), thread(), context=slow)
    pending = body(tool_results(first["messages"], "generate_video")[0])
    assert pending["status"] == "still_running" and "imagine-agent wait" in _reply(first)
    result = build_agent(service=context.service).invoke(
        user(f"wait for {pending['taskId']}"), thread(), context=context
    )
    done = body(tool_results(result["messages"], "wait_for_video")[0])
    assert done["status"] == "completed" and Path(done["videoPath"]).exists()
    assert "is ready" in _reply(result) and len(context.service.receipts()) == 1


def test_key_and_password_never_reach_the_model(tmp_path: Path) -> None:
    """A keystore-backed wallet on a real (loopback) sandbox: no message to the model, no tool output,
    no interrupt and no stream event contains the private key or the keystore password."""
    from eth_account import Account

    from imagine_agent.config import Settings
    from imagine_agent.sandbox import SandboxConfig, SandboxServer
    from imagine_agent.x402 import PrivateKeySigner

    signer = PrivateKeySigner.generate()
    key = signer.export_private_key()
    password = "correct horse battery staple 7f3a"
    keystore = tmp_path / "keystore.json"
    keystore.write_text(json.dumps(Account.encrypt(key, password, kdf="pbkdf2", iterations=1024)))
    secrets = {key.lower().removeprefix("0x"), password}
    with (
        SandboxServer(SandboxConfig(speed=600)) as server,
        ImagineService.create(
            Settings(
                base_url=server.url,
                keystore=keystore,
                keystore_password=password,
                data_dir=tmp_path / "data",
                allow_private_image_urls=True,
                poll_first=0.02,
                poll_floor=0.02,
                poll_cap=0.1,
            )
        ) as service,
    ):
        assert service.wallet.address == signer.address
        context = ImagineContext(service=service, output_dir=tmp_path / "videos")
        planner = RecordingPlanner()
        agent = build_agent(planner, service)
        seen: list[Any] = []
        config = thread()
        for text in (CORGI + " and coin it", "make a 20-second video of a cat", "what's my budget?"):
            seen.extend(
                agent.stream(
                    user(text), config, context=_with(context, auto_clank="agent"), stream_mode=["custom", "updates"]
                )
            )
            if agent.get_state(config).interrupts:
                seen.extend(agent.stream(APPROVE, config, context=context, stream_mode=["custom", "updates"]))
        model = scripted(call("budget_status"), call("quote_video", **VIDEO), call("generate_video", **VIDEO), "ok")
        build_agent(model, service).invoke(user("x"), thread(), context=context)
        assert len(service.receipts()) == 3
        haystack = "\n".join(
            [
                repr(seen),
                *(m.model_dump_json() for batch in planner.seen + model.seen for m in batch),
                *(json.dumps(v, default=str) for v in agent.get_state(config).values.values()),
            ]
        ).lower()
    assert "paid" in haystack and signer.address.lower() in haystack
    for secret in secrets:
        assert secret.lower() not in haystack


def test_a_hitl_approval_is_a_ledger_record_bound_to_what_was_paid(context: ImagineContext) -> None:
    """Issue 20 item 3: the person's yes in LangChain HITL is an approvals record (request, ceiling, payee,
    network, who approved), consumed by the payment it was given for."""
    import json as _json

    agent = build_agent(service=context.service)
    config = thread()
    agent.invoke(user("make me a 20-second video of a corgi surfing"), config, context=context)
    agent.invoke(APPROVE, config, context=context)
    (payment,) = context.service.receipts()
    (entry,) = context.service.ledger.approvals()
    assert (entry.state.value, entry.payment_id, entry.surface) == ("used", payment.id, "langchain")
    assert (entry.amount, entry.pay_to, entry.network) == (payment.amount, payment.pay_to, payment.network)
    assert entry.request_hash == payment.request_hash and entry.decided_by
    assert _json.loads(entry.request_json or "{}")["templateData"]["duration"] == 20
