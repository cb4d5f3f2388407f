"""The MCP server under the official ``mcp`` client as real clients use it: a 60 s call timeout, renders
longer than the server's wait, cancellation, concurrent waits, strict schemas, and human approval.

The sandbox's time scale keeps this fast: the server waits ``WAIT`` seconds per call and the sandbox's
jobs take longer than that, so what is tested is the behaviour (bounded calls, resumable jobs), not
wall time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.client import Client

from imagine_agent import __version__
from imagine_agent.client import request_hash
from imagine_agent.config import Settings
from imagine_agent.mcp_server import create_server
from imagine_agent.service import ImagineService

CLIENT_TIMEOUT = 60.0  # what the TypeScript SDK and @elizaos/plugin-mcp allow a call, progress or not
WAIT = 1.0  # the server's per-call wait in these tests (IMAGINE_MCP_WAIT_SECONDS)
SLOW_SPEED = 25.0  # sandbox jobs of 60-180 s at this scale take 2.4-7.2 s: longer than WAIT


def _text(result: Any) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


def _open(tmp_path: Path, speed: float, **settings: Any) -> ImagineService:
    service = ImagineService.create(Settings(data_dir=tmp_path, sandbox_speed=speed, **settings))
    service.output_dir = tmp_path / "videos"
    return service


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[ImagineService]:
    with _open(tmp_path, SLOW_SPEED) as service:
        yield service


class StatusReads:
    """Status requests the sandbox answered, per task (observed at the sandbox, not in our client)."""

    def __init__(self, service: ImagineService) -> None:
        self.counts: dict[str, int] = {}
        state = service.sandbox.state
        original = state.observe

        def observe(task_id: str, *, peek: bool = False) -> Any:
            if not peek:
                self.counts[task_id] = self.counts.get(task_id, 0) + 1
            return original(task_id, peek=peek)

        state.observe = observe


async def _wait_until_done(client: Client, task_id: str) -> dict[str, Any]:
    for _ in range(200):
        result = await client.call_tool("wait_for_video", {"task_id": task_id}, read_timeout_seconds=CLIENT_TIMEOUT)
        assert not result.is_error, _text(result)
        assert result.structured_content is not None
        if result.structured_content["status"] != "still_running":
            return result.structured_content
    raise AssertionError("the video never finished")


async def test_long_render_returns_in_time_then_wait_for_video_completes(slow: ImagineService) -> None:
    async with Client(create_server(slow, wait_seconds=WAIT)) as client:
        updates: list[float] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            updates.append(progress)

        first = await client.call_tool(
            "generate_video",
            {"prompt": "a glacier calving", "duration": 2},
            read_timeout_seconds=CLIENT_TIMEOUT,
            progress_callback=on_progress,
        )
        assert not first.is_error, _text(first)
        out = first.structured_content
        assert out is not None and out["status"] == "still_running" and out["taskId"]
        assert out["paid"]["amount"] == "250000" and "wait_for_video" in out["next"]
        assert updates, "progress notifications are sent while the call waits"

        done = await _wait_until_done(client, out["taskId"])
        assert done["status"] == "completed" and Path(done["videoPath"]).is_file()
    assert [(r.amount, r.state.value, r.task_id) for r in slow.receipts()] == [(250_000, "paid", out["taskId"])]
    assert slow.sandbox.state.job_count() == 1


async def test_two_concurrent_waits_for_one_task_both_succeed(slow: ImagineService) -> None:
    async with Client(create_server(slow, wait_seconds=30)) as client:
        paid = await client.call_tool("generate_video", {"prompt": "a kettle boiling", "duration": 2, "wait": False})
        assert paid.structured_content is not None
        task_id = paid.structured_content["taskId"]
        both = await asyncio.gather(
            *(
                client.call_tool("wait_for_video", {"task_id": task_id}, read_timeout_seconds=CLIENT_TIMEOUT)
                for _ in range(2)
            )
        )
        for result in both:
            assert not result.is_error, _text(result)
            assert result.structured_content is not None and result.structured_content["status"] == "completed"
        paths = {r.structured_content["videoPath"] for r in both if r.structured_content}
        assert len(paths) == 1 and Path(paths.pop()).stat().st_size > 0
        assert not [p for p in (slow.output_dir).iterdir() if p.name.endswith(".part")]
    assert len(slow.receipts()) == 1


async def test_a_cancelled_call_stops_polling_and_the_job_resumes(slow: ImagineService) -> None:
    reads = StatusReads(slow)
    async with Client(create_server(slow, wait_seconds=30)) as client:
        polled = anyio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            polled.set()

        async def call() -> None:
            await client.call_tool(
                "generate_video",
                {"prompt": "a lighthouse beam sweeping", "duration": 2},
                read_timeout_seconds=CLIENT_TIMEOUT,
                progress_callback=on_progress,
            )

        async with anyio.create_task_group() as group:
            group.start_soon(call)
            await polled.wait()
            group.cancel_scope.cancel()  # the client gives up on the call: notifications/cancelled
        [task] = slow.pending()
        # The server's polling for that call has stopped: more time than several poll intervals passes,
        # the job finishes at the sandbox, and no further status request arrives.
        job = slow.sandbox.state.job(task.task_id)
        seen = reads.counts[task.task_id]
        await anyio.sleep(max(0.0, job.created_at + job.run_seconds - slow.sandbox.state.now()) + 0.5)
        assert reads.counts[task.task_id] == seen
        [payment] = slow.receipts()
        assert payment.state.value == "paid" and payment.task_id == task.task_id

        done = await _wait_until_done(client, task.task_id)
        assert done["status"] == "completed"
    assert len(slow.receipts()) == 1 and slow.pending() == []


async def test_schemas_are_strict_described_and_annotated(service: ImagineService) -> None:
    async with Client(create_server(service)) as client:
        assert client.server_info is not None and client.server_info.version == __version__
        tools = {t.name: t for t in (await client.list_tools()).tools}
        for tool in tools.values():
            assert tool.description and tool.description == tool.description.strip()
            assert "\n " not in tool.description and "  " not in tool.description, tool.description
            schema = tool.input_schema
            assert schema.get("additionalProperties") is False, tool.name
            for name, prop in schema.get("properties", {}).items():
                assert prop.get("description"), (tool.name, name)
                assert "anyOf" not in prop and prop.get("type") in ("string", "number", "boolean"), (tool.name, prop)
            assert tool.annotations is not None
        for name in ("quote_video", "video_status", "budget_status"):
            assert tools[name].annotations.read_only_hint is True
        generate = tools["generate_video"]
        assert generate.annotations.read_only_hint is False and generate.annotations.open_world_hint is True
        props = generate.input_schema["properties"]
        assert (props["duration"]["minimum"], props["duration"]["maximum"], props["duration"]["default"]) == (1, 60, 8)
        assert (props["prompt"]["minLength"], props["prompt"]["maxLength"]) == (1, 4000)
        assert generate.input_schema["required"] == ["prompt"]
        assert "only while" in generate.description and "still_running" in generate.description

        for bad, why in (
            ({"prompt": "a cat", "duration": True}, "duration"),
            ({"prompt": "a cat", "duration": "3"}, "duration"),
            ({"prompt": "a cat", "max_per_call": 100}, "unknown argument(s) max_per_call"),
            ({"prompt": "a cat", "auto_clank": "yes"}, "auto_clank"),
            ({"prompt": ""}, "prompt"),
        ):
            result = await client.call_tool("generate_video", bad)
            assert result.is_error and why in _text(result), (bad, _text(result))
        quote = await client.call_tool("quote_video", {"prompt": "a cat", "price": 1})
        assert quote.is_error and "unknown argument(s) price" in _text(quote)
    assert service.receipts() == []


# ---------------------------------------------------------------------------------- human approval


def _answers(*replies: dict[str, Any] | str) -> tuple[Any, list[str]]:
    """An elicitation callback giving the replies in order ("decline" or an accepted form), and the questions."""
    asked: list[str] = []
    queue = list(replies)

    async def callback(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        reply = queue.pop(0)
        if isinstance(reply, str):
            return types.ElicitResult(action="decline")
        return types.ElicitResult(action="accept", content=reply)

    return callback, asked


async def test_payment_over_threshold_asks_through_elicitation(tmp_path: Path) -> None:
    with _open(tmp_path, 200, approval_threshold="0.5") as service:
        callback, asked = _answers("decline", {"approve": True})
        async with Client(create_server(service), elicitation_callback=callback) as client:
            declined = await client.call_tool("generate_video", {"prompt": "a red balloon rising", "duration": 8})
            assert (
                declined.is_error and "did not approve" in _text(declined) and "Nothing was signed" in _text(declined)
            )
            assert service.receipts() == []
            small = await client.call_tool("generate_video", {"prompt": "a red balloon", "duration": 2})
            assert not small.is_error, _text(small)  # 0.25 USDC: under the threshold, nobody is asked
            assert len(asked) == 1
            approved = await client.call_tool("generate_video", {"prompt": "a red balloon rising", "duration": 8})
            assert not approved.is_error, _text(approved)
        assert len(asked) == 2 and "1.000000 USDC" in asked[1] and "a red balloon rising" in asked[1]
        assert sorted(r.amount for r in service.receipts()) == [250_000, 1_000_000]


async def test_payment_over_threshold_without_elicitation_waits_in_the_approvals_queue(tmp_path: Path) -> None:
    with _open(tmp_path, 200, approval_threshold="0.5") as service:
        async with Client(create_server(service)) as client:
            args = {"prompt": "a red balloon rising", "duration": 8}
            waiting = await client.call_tool("generate_video", args)
            assert not waiting.is_error and waiting.structured_content is not None, _text(waiting)
            out = waiting.structured_content
            assert out["status"] == "awaiting_approval" and out["paid"] is None
            assert f"approvals approve {out['approvalId']}" in out["message"] and "wait_for_video" in out["next"]
            assert service.receipts() == []
            quote = await client.call_tool("quote_video", args)
            assert quote.structured_content is not None and quote.structured_content["needsHumanApproval"] is True
            service.ledger.decide_approval(out["approvalId"], approve=True, decided_by="cli", ttl=600)
            done = await client.call_tool("wait_for_video", {"task_id": out["approvalId"]})
            assert done.structured_content is not None and done.structured_content["status"] == "completed"
        assert [r.amount for r in service.receipts()] == [1_000_000]


@pytest.mark.parametrize("policy", ["never", "ask"])
async def test_a_callers_flag_alone_never_deploys_a_coin(tmp_path: Path, policy: str) -> None:
    with _open(tmp_path, 200, auto_clank=policy) as service:
        async with Client(create_server(service)) as client:
            result = await client.call_tool(
                "generate_video", {"prompt": "a paper crane", "duration": 2, "auto_clank": True}
            )
            if policy == "never":
                assert not result.is_error and result.structured_content is not None
                assert result.structured_content["autoClank"] is False
                assert _paid_hashes(service) == {_hash(service, "a paper crane", False)}
            else:  # no person to ask over this client: the coin waits for the operator, nothing paid
                assert not result.is_error and result.structured_content is not None, _text(result)
                assert result.structured_content["status"] == "awaiting_approval"
                assert "coin" in result.structured_content["message"] and service.receipts() == []


async def test_ask_policy_deploys_a_coin_only_when_the_person_says_so(tmp_path: Path) -> None:
    with _open(tmp_path, 200, auto_clank="ask") as service:
        callback, asked = _answers(
            {"approve": True, "deploy_coin": False}, {"approve": True, "deploy_coin": True}, "decline"
        )
        async with Client(create_server(service), elicitation_callback=callback) as client:
            without = await client.call_tool(
                "generate_video", {"prompt": "a paper crane", "duration": 2, "auto_clank": True}
            )
            assert not without.is_error and without.structured_content is not None
            assert without.structured_content["autoClank"] is False
            coin = await client.call_tool(
                "generate_video", {"prompt": "a paper boat", "duration": 2, "auto_clank": True}
            )
            assert not coin.is_error and coin.structured_content is not None
            assert coin.structured_content["autoClank"] is True
            declined = await client.call_tool(
                "generate_video", {"prompt": "a paper plane", "duration": 2, "auto_clank": True}
            )
            assert declined.is_error and "did not approve" in _text(declined)
            plain = await client.call_tool("generate_video", {"prompt": "a paper lantern", "duration": 2})
            assert not plain.is_error  # no coin asked for: nobody is asked
        assert len(asked) == 3 and all("coin" in q for q in asked)
        assert len(service.receipts()) == 3
        # What was sent, not only what was said: the request paid for carried autoClank only when approved.
        assert _paid_hashes(service) == {
            _hash(service, "a paper crane", False),
            _hash(service, "a paper boat", True),
            _hash(service, "a paper lantern", False),
        }


def _hash(service: ImagineService, prompt: str, coin: bool) -> str:
    request, _ = service.build_request(prompt, duration=2, auto_clank=coin)
    return request_hash(service.client.base_url, request, None)


def _paid_hashes(service: ImagineService) -> set[str]:
    return {r.request_hash for r in service.receipts()}


async def test_a_download_that_cannot_be_written_is_a_clear_download_error(
    service: ImagineService, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the videos directory should be")
    service.output_dir = blocker
    async with Client(create_server(service)) as client:
        result = await client.call_tool("generate_video", {"prompt": "a moth at a lamp", "duration": 2})
        text = _text(result)
        assert (
            result.is_error
            and "DownloadError" in text
            and "cannot create the video file" in text
            and str(blocker) in text
        )
        assert "nothing more is paid" in text and "wait_for_video" in text
        [payment] = service.receipts()
        service.output_dir = tmp_path / "videos"  # the operator fixes it: the paid task downloads, no new payment
        again = await client.call_tool("wait_for_video", {"task_id": payment.task_id})
        assert not again.is_error and again.structured_content is not None
        assert Path(again.structured_content["videoPath"]).is_file()
    assert len(service.receipts()) == 1
