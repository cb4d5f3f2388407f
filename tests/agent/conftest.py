"""Fixtures for the agent tests: services on the embedded sandbox, request recorders, scripted models."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolCall, ToolMessage
from pydantic import Field

from imagine_agent.config import Settings
from imagine_agent.planner import OfflinePlanner
from imagine_agent.service import ImagineService
from imagine_agent.tools import ImagineContext

SPEED = 600.0  # sandbox jobs of 60-180 s take 0.1-0.3 s


class Requests:
    """Every HTTP request a service sends: status polls counted, create bodies kept."""

    def __init__(self) -> None:
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> None:
        self.sent.append(request)

    @property
    def status_polls(self) -> int:
        return sum(1 for r in self.sent if r.url.path.endswith("/status"))

    @property
    def paid_creates(self) -> list[dict[str, Any]]:
        """Bodies of the creates that carried X-PAYMENT, with templateData decoded."""
        bodies = []
        for r in self.sent:
            if r.url.path.endswith("/generation/create") and "x-payment" in r.headers:
                body = json.loads(r.content)
                if isinstance(body.get("templateData"), str):
                    body["templateData"] = json.loads(body["templateData"])
                bodies.append(body)
        return bodies


@pytest.fixture
def make_sandbox_service(tmp_path: Path) -> Iterator[Callable[..., ImagineService]]:
    """``make_service(**settings)``: a service on its own embedded sandbox; ``.requests`` records its HTTP."""
    made: list[ImagineService] = []

    def make(**overrides: Any) -> ImagineService:
        settings = Settings(**{"sandbox_speed": SPEED, "data_dir": tmp_path / "data", **overrides})
        service = ImagineService.create(settings)
        service.output_dir = tmp_path / "videos"
        recorder = Requests()
        service.client.http.event_hooks["request"].append(recorder)
        service.requests = recorder  # type: ignore[attr-defined]
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


@pytest.fixture
def service(make_sandbox_service: Callable[..., ImagineService]) -> ImagineService:
    return make_sandbox_service()


@pytest.fixture
def context(service: ImagineService, tmp_path: Path) -> ImagineContext:
    return ImagineContext(service=service, output_dir=tmp_path / "videos")


class RecordingPlanner(OfflinePlanner):
    """The offline planner, keeping every message list it is called with."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def plan(self, messages: Any) -> AIMessage:
        self.seen.append(list(messages))
        return super().plan(messages)


class ScriptedModel(GenericFakeChatModel):
    """A scripted test model: answers from a list, binds tools by ignoring them, records its inputs."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        self.seen.append(list(messages))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def scripted(*steps: AIMessage | str) -> ScriptedModel:
    return ScriptedModel(messages=iter(steps))


def call(name: str, **args: Any) -> AIMessage:
    """A model turn that calls one tool."""
    return AIMessage(
        content="", tool_calls=[ToolCall(name=name, args=args, id=f"call_{uuid.uuid4().hex[:8]}", type="tool_call")]
    )


def thread() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def tool_results(messages: list[BaseMessage], name: str | None = None) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage) and (name is None or m.name == name)]


def body(message: ToolMessage) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(str(message.content))
    return parsed


def model_turns(messages: list[BaseMessage]) -> list[AIMessage]:
    return [m for m in messages if isinstance(m, AIMessage)]
