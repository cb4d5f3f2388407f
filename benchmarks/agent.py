"""4. Agent: model calls and prompt tokens per delivered video — our agent vs a plain ReAct agent.

Both agents use the same five tools, the same system prompt and the same deterministic model logic
(the offline planner: quote, pay, narrate), on the embedded sandbox (time-scaled). They differ only in
where the waiting happens:

- ours: ``build_agent`` — ``generate_video`` waits inside the tool (streaming progress), so the model
  is called to plan, to pay and to narrate;
- the baseline: ``create_agent`` with no middleware; ``generate_video`` hands back the task id at once
  (``wait_seconds`` of a millisecond) and the model polls ``video_status`` until the video is done,
  generously at the provider's 15 s (a model with no sleep tool would call faster, and cost more).

Prompt tokens are counted per model call with ``count_tokens_approximately`` over the messages the
model receives plus the bound tools' schemas (what a chat API bills as input on every call).
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import Row, log, ratio_row, sized, skipped

SECTION = "4. agent"
SPEED = 60.0  # sandbox jobs of 60-180 s take 1-3 s; 15 s of polling is 0.25 s
PROVIDER_INTERVAL = 15.0
PROMPTS = (
    "make me an 8-second video of a corgi surfing at sunset",
    "make me an 8-second video of a lighthouse in a storm",
    "make me an 8-second video of a paper boat on a rainy street",
    "make me an 8-second video of a fox running through snow",
    "make me an 8-second video of a hot air balloon over canyons",
    "make me an 8-second video of a koi pond in autumn",
)


@dataclass
class Tally:
    calls: int = 0
    tokens: int = 0


def _models(tally_ours: Tally, tally_react: Tally) -> tuple[Any, Any]:
    """The two scripted models (defined here so the agent stack is imported only when this row runs)."""
    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage
    from langchain_core.messages.utils import count_tokens_approximately

    from imagine_agent.planner import OfflinePlanner
    from imagine_agent.tools import imagine_tools

    schemas: list[Any] = list(imagine_tools())

    def record(tally: Tally, messages: list[BaseMessage]) -> None:
        tally.calls += 1
        tally.tokens += count_tokens_approximately(messages, tools=schemas)

    class CountingPlanner(OfflinePlanner):
        """Our agent's model: the offline planner, counted."""

        def plan(self, messages: Any) -> AIMessage:
            record(tally_ours, list(messages))
            return super().plan(messages)

    class PollingPlanner(OfflinePlanner):
        """The ReAct baseline's model: the same planner, but it polls status itself until the video is done."""

        def plan(self, messages: Any) -> AIMessage:
            record(tally_react, list(messages))
            start = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
            last = messages[-1] if len(messages) > start + 1 else None
            if isinstance(last, ToolMessage) and last.name in ("generate_video", "video_status"):
                body = json.loads(str(last.content))
                task_id = body.get("taskId")
                if task_id and body.get("status") not in ("completed", "failed") and "error" not in body:
                    time.sleep(PROVIDER_INTERVAL / SPEED)  # the model "waits" 15 s between its status calls
                    call = ToolCall(
                        name="video_status",
                        args={"task_id": task_id},
                        id=f"call_{uuid.uuid4().hex[:8]}",
                        type="tool_call",
                    )
                    return AIMessage(content="", tool_calls=[call])
                if last.name == "video_status" and body.get("status") == "completed":
                    return AIMessage(content=f"Your video is ready: {body.get('videoUrl')}")
            return super().plan(messages)

    return CountingPlanner(), PollingPlanner()


def _delivered(messages: list[Any]) -> bool:
    """Did the run end with a completed video (from generate_video or from a status poll)?"""
    from langchain_core.messages import ToolMessage

    for m in reversed(messages):
        if isinstance(m, ToolMessage) and m.name in ("generate_video", "video_status", "wait_for_video"):
            try:
                return bool(json.loads(str(m.content)).get("status") == "completed")
            except ValueError:
                return False
    return False


def _run_agents(videos: int) -> tuple[Tally, int, Tally, int]:
    from langchain.agents import create_agent
    from langchain_core.runnables import RunnableConfig

    from imagine_agent.agent import build_agent, system_prompt
    from imagine_agent.config import Settings
    from imagine_agent.service import ImagineService
    from imagine_agent.tools import ImagineContext, imagine_tools

    ours_tally, react_tally = Tally(), Tally()
    ours_model, react_model = _models(ours_tally, react_tally)
    delivered = {"ours": 0, "react": 0}
    with tempfile.TemporaryDirectory(prefix="imagine-bench-") as tmp:
        settings = Settings(sandbox_speed=SPEED, data_dir=Path(tmp) / "data", rate_per_minute=None)
        service = ImagineService.create(settings)
        try:
            ours = build_agent(ours_model, service)
            ours_context = ImagineContext(service=service, output_dir=Path(tmp) / "ours")
            react_context = ImagineContext(service=service, output_dir=Path(tmp) / "react", wait_seconds=0.001)
            react = create_agent(
                react_model, imagine_tools(), system_prompt=system_prompt(react_context), context_schema=ImagineContext
            )
            for i in range(videos):
                for name, agent, context in (("ours", ours, ours_context), ("react", react, react_context)):
                    text = f"{PROMPTS[i % len(PROMPTS)]} ({name} {i})"
                    config: RunnableConfig = {"configurable": {"thread_id": uuid.uuid4().hex}}
                    result = agent.invoke({"messages": [{"role": "user", "content": text}]}, config, context=context)
                    delivered[name] += _delivered(result["messages"])
        finally:
            service.close()
    return ours_tally, delivered["ours"], react_tally, delivered["react"]


def run(quick: bool) -> list[Row]:
    videos = sized(quick, 6, 3, 1)
    try:
        ours, ours_videos, react, react_videos = _run_agents(videos)
    except ImportError as exc:
        return [skipped(SECTION, "agent vs ReAct", f"the agent stack is not importable yet ({exc})")]
    except Exception as exc:  # another engineer's code in progress: report, never hide
        return [skipped(SECTION, "agent vs ReAct", f"the agent did not run: {type(exc).__name__}: {exc}"[:300])]
    if not ours_videos or not react_videos:
        return [skipped(SECTION, "agent vs ReAct", f"videos delivered: ours {ours_videos}, ReAct {react_videos}")]
    log(
        f"  agent: ours {ours.calls / ours_videos:.1f} model calls, {ours.tokens / ours_videos:.0f} prompt tokens "
        f"per video; ReAct {react.calls / react_videos:.1f} calls, {react.tokens / react_videos:.0f} tokens"
    )
    note = f"{ours_videos}/{videos} and {react_videos}/{videos} videos delivered; offline planner as the model"
    return [
        ratio_row(
            SECTION,
            "model calls per delivered video, ours",
            ours.calls / ours_videos,
            "calls",
            "ReAct agent polling status",
            react.calls / react_videos,
            note=note,
        ),
        ratio_row(
            SECTION,
            "prompt tokens per delivered video, ours",
            ours.tokens / ours_videos,
            "tok",
            "ReAct agent polling status",
            react.tokens / react_videos,
            note="count_tokens_approximately: messages + tool schemas, every call",
        ),
    ]
