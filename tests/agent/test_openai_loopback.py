"""A real ChatOpenAI over HTTP to a loopback OpenAI-compatible server drives a paid generation."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from typer.testing import CliRunner

from imagine_agent.agent import build_agent
from imagine_agent.cli import app as cli
from imagine_agent.tools import ImagineContext

from .conftest import body, model_turns, thread, tool_results, user

pytestmark = pytest.mark.e2e

ARGS = {"prompt": "A corgi surfs a glassy wave at sunset, tracking shot, golden-hour light, cinematic.", "duration": 8}


def _completion(model: str, message: dict[str, Any]) -> dict[str, Any]:
    finish = "tool_calls" if message.get("tool_calls") else "stop"
    return {
        "id": f"chatcmpl-{time.time_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


def _tool_call(name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": f"call_{name}_{time.time_ns()}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
        ],
    }


def fake_openai() -> FastAPI:
    """Plays a tool-calling LLM: quote, then generate with the same arguments, then a final answer."""
    api = FastAPI()
    api.state.requests = []

    @api.post("/v1/chat/completions")
    async def completions(request: Request) -> dict[str, Any]:
        payload = await request.json()
        api.state.requests.append(payload)
        results = {
            m.get("name") or m["tool_call_id"].split("_")[1]: m["content"]
            for m in payload["messages"]
            if m["role"] == "tool"
        }
        if not results:
            return _completion(payload["model"], _tool_call("quote_video", ARGS))
        if "generate" not in "".join(results):
            return _completion(payload["model"], _tool_call("generate_video", ARGS))
        generated = json.loads(next(v for k, v in results.items() if "generate" in k))
        text = (
            f"Done: {generated['videoPath']} — paid {generated['paid']['amount']}, "
            f"transaction {generated['paid']['transaction']}."
        )
        return _completion(payload["model"], {"role": "assistant", "content": text})

    return api


@pytest.fixture
def openai_url() -> Iterator[tuple[str, FastAPI]]:
    api = fake_openai()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(api, log_level="warning", lifespan="off"))
    worker = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    worker.start()
    while not server.started:
        time.sleep(0.005)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1", api
    server.should_exit = True
    worker.join(5)
    sock.close()


def test_chat_openai_completes_a_paid_generation(openai_url: tuple[str, FastAPI], context: ImagineContext) -> None:
    from langchain_openai import ChatOpenAI  # here, not at collection: 1.5 s of CPU in every worker

    url, api = openai_url
    model = ChatOpenAI(model="loopback-gpt", base_url=url, api_key="sk-loopback-test", max_retries=0)  # type: ignore[arg-type]
    result = build_agent(model, context.service).invoke(
        user("make me an 8-second video of a corgi surfing"), thread(), context=context
    )
    generated = body(tool_results(result["messages"], "generate_video")[0])
    assert Path(generated["videoPath"]).stat().st_size > 0
    (payment,) = context.service.receipts()
    assert payment.transaction in result["messages"][-1].content
    assert len(api.state.requests) == 3 == len(model_turns(result["messages"]))
    first = api.state.requests[0]
    assert {t["function"]["name"] for t in first["tools"]} == {
        "quote_video",
        "generate_video",
        "wait_for_video",
        "video_status",
        "budget_status",
    }
    assert first["messages"][0]["role"] == "system" and "autoClank" in first["messages"][0]["content"]
    sent = json.dumps(api.state.requests)
    assert "runtime" not in sent and context.service.wallet.signer.export_private_key()[2:] not in sent


def test_cli_chat_with_a_configured_openai_model(
    openai_url: tuple[str, FastAPI], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, api = openai_url
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IMAGINE_MODEL", "loopback-gpt")
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("IMAGINE_SANDBOX_SPEED", "600")
    monkeypatch.setenv("IMAGINE_DATA_DIR", str(tmp_path / "data"))
    out = CliRunner().invoke(cli, ["chat", "--json", "make me an 8-second video of a corgi surfing"])
    assert out.exit_code == 0, out.output
    reply = json.loads(out.stdout.strip().splitlines()[-1])
    assert reply["modelCalls"] == 3 and reply["paid"]["amountUsdc"] == "1"
    assert (tmp_path / reply["videoPath"]).exists()
    assert api.state.requests[0]["model"] == "loopback-gpt"
