"""The five tools: LangChain standard tests, schemas the model cannot abuse, errors as messages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests
from langgraph.prebuilt import ToolRuntime

from imagine_agent.config import Settings
from imagine_agent.models import PaymentRequirements
from imagine_agent.service import ImagineService
from imagine_agent.tools import (
    PROGRESS_EVENT,
    BudgetStatusTool,
    GenerateVideoTool,
    HumanApproval,
    ImagineContext,
    QuoteVideoTool,
    VideoStatusTool,
    WaitForVideoTool,
    human_approved,
    imagine_tools,
)

from .conftest import SPEED

VIDEO = {"prompt": "A corgi surfing at sunset, tracking shot, golden hour.", "duration": 4}
TASK = {"task_id": "123e4567-e89b-12d3-a456-426614174000"}


@pytest.fixture(scope="module")
def shared_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImagineContext]:
    """One sandbox service for the standard tests (module scope: they only need it to exist)."""
    tmp = tmp_path_factory.mktemp("tools")
    with ImagineService.create(Settings(sandbox_speed=SPEED, data_dir=tmp, rate_per_minute=None)) as service:
        yield ImagineContext(service=service, output_dir=tmp / "videos")


# ------------------------------------------------------------------------------- standard tests


class _Standard:
    tool_class: type[BaseTool]
    example: ClassVar[dict[str, Any]] = {}

    @property
    def tool_constructor(self) -> type[BaseTool]:
        return self.tool_class

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return dict(self.example)


class _Integration(_Standard):
    @pytest.fixture
    def tool(self, shared_context: ImagineContext) -> BaseTool:
        return self.tool_class(context=shared_context)


class TestQuoteUnit(_Standard, ToolsUnitTests):
    tool_class = QuoteVideoTool
    example = VIDEO


class TestGenerateUnit(_Standard, ToolsUnitTests):
    tool_class = GenerateVideoTool
    example = VIDEO


class TestWaitUnit(_Standard, ToolsUnitTests):
    tool_class = WaitForVideoTool
    example = TASK


class TestStatusUnit(_Standard, ToolsUnitTests):
    tool_class = VideoStatusTool
    example = TASK


class TestBudgetUnit(_Standard, ToolsUnitTests):
    tool_class = BudgetStatusTool


class TestQuoteIntegration(_Integration, ToolsIntegrationTests):
    tool_class = QuoteVideoTool
    example = VIDEO


class TestGenerateIntegration(_Integration, ToolsIntegrationTests):
    tool_class = GenerateVideoTool
    example = VIDEO


class TestWaitIntegration(_Integration, ToolsIntegrationTests):
    tool_class = WaitForVideoTool
    example = TASK  # unknown to the server: the tool answers with a not-found error message


class TestStatusIntegration(_Integration, ToolsIntegrationTests):
    tool_class = VideoStatusTool
    example = TASK


class TestBudgetIntegration(_Integration, ToolsIntegrationTests):
    tool_class = BudgetStatusTool


# ------------------------------------------------------------------------------- schemas (rule 5)

FORBIDDEN = (
    "price",
    "amount",
    "cap",
    "max",
    "limit",
    "pay",
    "wallet",
    "key",
    "password",
    "threshold",
    "budget",
    "network",
    "asset",
    "runtime",
    "service",
    "context",
)


def test_no_model_visible_argument_touches_money_or_secrets() -> None:
    for tool in imagine_tools():
        params = convert_to_openai_tool(tool)["function"]["parameters"]
        for name in params.get("properties", {}):
            assert not any(word in name.lower() for word in FORBIDDEN), (tool.name, name)
        assert "runtime" not in json.dumps(params)


def test_unknown_arguments_are_refused_and_nothing_is_paid(context: ImagineContext) -> None:
    tool = GenerateVideoTool(context=context)
    for extra in ({"max_per_call": "100"}, {"price": "0.01"}, {"pay_to": "0x" + "1" * 40}, {"approval_threshold": 0}):
        message = tool.invoke(ToolCall(name=tool.name, args={**VIDEO, **extra}, id="c1", type="tool_call"))
        assert isinstance(message, ToolMessage) and message.status == "error"
        reply = json.loads(str(message.content))
        assert reply["error"] == "InvalidArguments" and reply["paid"] is False
        assert "operator" in reply["message"]
    assert context.service.receipts() == []


def test_errors_are_tool_messages_the_model_can_read(context: ImagineContext) -> None:
    tool = GenerateVideoTool(context=context)
    message = tool.invoke(
        ToolCall(name=tool.name, args={**VIDEO, "image": "http://127.0.0.1/x.png"}, id="c", type="tool_call")
    )
    assert message.status == "error"
    reply = json.loads(message.content)
    assert reply["error"] == "InvalidRequestError" and reply["paid"] is False
    local = tool.invoke(ToolCall(name=tool.name, args={**VIDEO, "image": "/etc/passwd"}, id="d", type="tool_call"))
    assert local.status == "error" and "local files" in local.content
    assert context.service.receipts() == []
    lonely = QuoteVideoTool().invoke(ToolCall(name="quote_video", args=VIDEO, id="e", type="tool_call"))
    assert lonely.status == "error" and "ImagineContext" in lonely.content


def test_budget_refusal_is_explained(make_sandbox_service: Any, tmp_path: Path) -> None:
    ctx = ImagineContext(service=make_sandbox_service(max_per_call="0.4"), output_dir=tmp_path)
    quote = json.loads(QuoteVideoTool(context=ctx).invoke(VIDEO))
    assert quote["allowed"] is False and "per-call cap" in quote["refusal"] and quote["refusalCode"] == "per_call_cap"
    paid = GenerateVideoTool(context=ctx).invoke(ToolCall(name="generate_video", args=VIDEO, id="x", type="tool_call"))
    assert paid.status == "error"
    assert json.loads(paid.content) | {"message": ""} == {
        "error": "BudgetExceededError",
        "code": "per_call_cap",
        "message": "",
        "paid": False,
    }
    assert ctx.service.receipts() == []


# ------------------------------------------------------------------------------- waiting and progress


def _runtime(ctx: ImagineContext, events: list[Any]) -> ToolRuntime[Any, Any]:
    return ToolRuntime(state={}, context=ctx, config={}, stream_writer=events.append, tool_call_id="t1", store=None)


def test_generate_streams_progress_and_downloads(context: ImagineContext) -> None:
    events: list[Any] = []
    out = json.loads(GenerateVideoTool().invoke({**VIDEO, "runtime": _runtime(context, events)}))
    assert out["status"] == "completed" and Path(out["videoPath"]).stat().st_size > 0
    assert out["paid"]["amountUsdc"] == "0.5" and out["paid"]["transaction"].startswith("0x")
    assert out["sandbox"] and out["budgetLeft"]["nextCallUsdc"] == "5"
    stages = [e["stage"] for e in events]
    assert all(e["type"] == PROGRESS_EVENT and e["taskId"] == out["taskId"] for e in events)
    assert stages[0] == "paid" and stages[-1] == "downloaded" and "status" in stages
    assert events[-2]["progress"] == 100


async def test_async_tools(context: ImagineContext) -> None:
    events: list[Any] = []
    tools = {t.name: t for t in imagine_tools()}
    runtime = _runtime(context, events)
    quote = json.loads(await tools["quote_video"].ainvoke({**VIDEO, "runtime": runtime}))
    out = json.loads(await tools["generate_video"].ainvoke({**VIDEO, "runtime": runtime}))
    assert quote["price"] == out["paid"]["amount"]
    assert any(e["stage"] == "status" for e in events)
    status = json.loads(await tools["video_status"].ainvoke({"task_id": out["taskId"], "runtime": runtime}))
    assert status["status"] == "completed"
    budget = json.loads(await tools["budget_status"].ainvoke({"runtime": runtime}))
    assert budget["spentUsdc"] == "0.5" and budget["autoClankPolicy"] == "never"


def test_a_long_job_hands_back_its_task_id(context: ImagineContext) -> None:
    slow = ImagineContext(service=context.service, output_dir=context.output_dir, wait_seconds=0.001)
    out = json.loads(GenerateVideoTool(context=slow).invoke(VIDEO))
    assert out["status"] == "still_running" and "wait_for_video" in out["next"]
    assert out["paid"]["amountUsdc"] == "0.5"
    done = json.loads(WaitForVideoTool(context=context).invoke({"task_id": out["taskId"]}))
    assert done["status"] == "completed" and Path(done["videoPath"]).exists()
    assert done["paid"]["transaction"] == out["paid"]["transaction"]
    assert len(context.service.receipts()) == 1  # waiting again paid nothing


def test_failed_generation_says_what_was_paid(context: ImagineContext) -> None:
    context.service.sandbox.state.add_faults({"kind": "fail", "params": {"at": 0.2}})
    message = GenerateVideoTool(context=context).invoke(
        ToolCall(name="generate_video", args=VIDEO, id="f", type="tool_call")
    )
    assert message.status == "error"
    out = json.loads(message.content)
    assert out["error"] == "GenerationFailedError" and out["paid"]["amountUsdc"] == "0.5"
    assert context.service.ledger.get_task(out["taskId"]).status == "failed"
    again = GenerateVideoTool(context=context).invoke(VIDEO)  # a failed job is not "open": a retry pays anew
    assert json.loads(again)["status"] == "completed"


# ------------------------------------------------------------------------------- autoClank policy (rule 6)


@pytest.mark.parametrize(
    ("policy", "asked", "sent"),
    [
        ("never", True, False),
        ("never", False, False),
        ("always", False, True),
        ("always", True, True),
        ("agent", True, True),
        ("agent", False, False),
    ],
)
def test_policy_decides_what_is_sent(context: ImagineContext, policy: str, asked: bool, sent: bool) -> None:
    ctx = ImagineContext(service=context.service, output_dir=context.output_dir, auto_clank=policy)  # type: ignore[arg-type]
    out = json.loads(GenerateVideoTool(context=ctx).invoke({**VIDEO, "auto_clank": asked}))
    wire = context.service.requests.paid_creates[-1]["templateData"]  # type: ignore[attr-defined]
    assert wire.get("autoClank", False) is sent
    assert out["request"]["autoClank"] is sent
    assert ("coin" in out) is sent
    if sent:
        assert out["coin"]["creator"] == context.service.wallet.address
        assert "creator" in out["coin"]["note"] and "trading fees" in out["coin"]["note"]


def test_ask_policy_needs_a_human(context: ImagineContext) -> None:
    ctx = ImagineContext(service=context.service, output_dir=context.output_dir, auto_clank="ask")
    tool = GenerateVideoTool(context=ctx)
    refused = tool.invoke(ToolCall(name="generate_video", args={**VIDEO, "auto_clank": True}, id="a", type="tool_call"))
    assert refused.status == "error" and "human" in refused.content and context.service.receipts() == []
    with human_approved(HumanApproval(amount=None, reasons=("coin",))):
        out = json.loads(tool.invoke({**VIDEO, "auto_clank": True}))
    assert out["coin"]["autoClank"] is True
    assert context.service.requests.paid_creates[-1]["templateData"]["autoClank"] is True  # type: ignore[attr-defined]


def test_a_persons_approval_covers_only_what_the_human_saw() -> None:
    """The one approval value (replacing the tools' own approver): the price shown is the ceiling, and the
    payee and network shown bind it; it lives in a context variable, so other tasks never see it."""
    from imagine_agent.wallet import _PERSON, PersonApproval

    payee, other = "0x" + "ab" * 20, "0x" + "cd" * 20
    req = PaymentRequirements.model_validate(
        {
            "scheme": "exact",
            "network": "base",
            "maxAmountRequired": "2500000",
            "resource": "https://x/generation/create",
            "payTo": payee,
            "maxTimeoutSeconds": 60,
            "asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        }
    )
    shown = PersonApproval(2_500_000, "langchain", pay_to=payee.upper().replace("0X", "0x"), network="base")
    assert shown.covers(req, "h")
    assert not PersonApproval(2_000_000, "langchain", pay_to=payee, network="base").covers(req, "h")  # price rose
    assert not PersonApproval(2_500_000, "langchain", pay_to=other, network="base").covers(req, "h")
    assert not PersonApproval(2_500_000, "langchain", pay_to=payee, network="base-sepolia").covers(req, "h")
    assert asyncio.run(_elsewhere(shown)) is None  # the mark does not leak into other tasks
    assert _PERSON.get() is None


async def _elsewhere(approval: object) -> object:
    from imagine_agent.wallet import _PERSON, PersonApproval, person_approved

    async def other() -> object:
        return _PERSON.get()

    assert isinstance(approval, PersonApproval)
    with person_approved(approval):
        pass
    return await asyncio.create_task(other())


def test_tools_take_any_listed_model_and_report_the_media_page_and_coin(
    service: ImagineService, tmp_path: Path
) -> None:
    """Issue 13.4/13.5: quote_video lists the models; generate_video sends the chosen one and returns the
    media page and the coin (address, symbol, chain, creator) of today's result shape."""
    service.sandbox.state.config.x402 = "v2"
    service.sandbox.state.config.rich_results = True
    ctx = ImagineContext(service=service, output_dir=tmp_path / "videos", auto_clank="agent")
    quote = json.loads(QuoteVideoTool().invoke({**VIDEO, "runtime": _runtime(ctx, [])}))
    assert quote["models"] == ["xai-grok-imagine", "sora-2", "sora-2-pro", "fal-kling-o3"]
    assert quote["defaultModel"] == "xai-grok-imagine"
    args = {**VIDEO, "video_model": "sora-2", "auto_clank": True, "runtime": _runtime(ctx, [])}
    out = json.loads(GenerateVideoTool().invoke(args))
    (settled,) = service.sandbox.state.settlements()
    assert out["paid"]["amount"] == "600000" and service.sandbox.state.job(settled.task_id).model == "sora-2"
    assert out["mediaUrl"].endswith(f"/media/{out['taskId']}")
    assert out["coin"]["address"].startswith("0x") and out["coin"]["symbol"]
    assert out["coin"]["creator"] == service.wallet.address and out["coin"]["chain"] == "base"
    refused = json.loads(GenerateVideoTool().invoke({**VIDEO, "video_model": "sora", "runtime": _runtime(ctx, [])}))
    assert refused["error"] == "InvalidRequestError" and refused["paid"] is False
