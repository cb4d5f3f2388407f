"""The agent's public API is pinned: a change to an ``__all__`` here is a deliberate act."""

from __future__ import annotations

import importlib

PINNED = {
    "imagine_agent.agent": ["ImagineContext", "VideoReport", "build_agent", "chat_model", "system_prompt"],
    "imagine_agent.planner": [
        "PLANNER_LABEL",
        "PLANNER_NAME",
        "Intent",
        "OfflinePlanner",
        "VideoAsk",
        "enhance_prompt",
        "parse_request",
    ],
    "imagine_agent.chat": ["ChatSession", "Turn", "run_chat"],
    "imagine_agent.prompts": ["PROMPT_NAMES", "load_prompt", "render_prompt"],
    "imagine_agent.tools": [
        "PROGRESS_EVENT",
        "TOOL_NAMES",
        "ApprovalGate",
        "BudgetArgs",
        "BudgetStatusTool",
        "GateDecision",
        "GenerateVideoTool",
        "HumanApproval",
        "ImagineContext",
        "ImagineTool",
        "Plan",
        "QuoteVideoTool",
        "TaskArgs",
        "VideoRequestArgs",
        "VideoStatusTool",
        "WaitArgs",
        "WaitForVideoTool",
        "current_approval",
        "human_approved",
        "imagine_tools",
        "parse_tool_result",
        "person_approval",
        "plan_request",
        "resolve_context",
    ],
}


def test_all_is_pinned() -> None:
    for name, exported in PINNED.items():
        module = importlib.import_module(name)
        assert sorted(module.__all__) == sorted(exported), name
        for attr in exported:
            assert getattr(module, attr) is not None


def test_tool_names_match_the_tools() -> None:
    tools = importlib.import_module("imagine_agent.tools")
    assert [t.name for t in tools.imagine_tools()] == list(tools.TOOL_NAMES)
