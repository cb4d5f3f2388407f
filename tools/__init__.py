"""LangChain tools over ImagineService (reached as ``imagine_agent.tools``).

``imagine_tools()`` gives quote_video, generate_video, wait_for_video, video_status and budget_status.
They find the service in ``ToolRuntime.context`` (an ``ImagineContext``), never in an argument.
"""

from __future__ import annotations

from .approval import (
    ApprovalGate,
    GateDecision,
    HumanApproval,
    current_approval,
    human_approved,
    person_approval,
)
from .context import ImagineContext, resolve_context
from .schemas import BudgetArgs, Plan, TaskArgs, VideoRequestArgs, WaitArgs, plan_request
from .video import (
    PROGRESS_EVENT,
    TOOL_NAMES,
    BudgetStatusTool,
    GenerateVideoTool,
    ImagineTool,
    QuoteVideoTool,
    VideoStatusTool,
    WaitForVideoTool,
    imagine_tools,
    parse_tool_result,
)

__all__ = [
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
]
