"""Moved to ``imagine_agent.agent.planner`` (intent, enhance, narrate, model); this path keeps working."""

from __future__ import annotations

from .agent.planner.enhance import enhance_prompt as enhance_prompt
from .agent.planner.intent import Intent as Intent
from .agent.planner.intent import VideoAsk as VideoAsk
from .agent.planner.intent import parse_request as parse_request
from .agent.planner.model import PLANNER_NAME as PLANNER_NAME
from .agent.planner.model import OfflinePlanner as OfflinePlanner
from .agent.planner.narrate import HELP as HELP
from .agent.planner.narrate import NOTHING_TO_CONFIRM as NOTHING_TO_CONFIRM
from .agent.planner.narrate import PLANNER_LABEL as PLANNER_LABEL
from .agent.planner.narrate import UNCLEAR as UNCLEAR

__all__ = [
    "PLANNER_LABEL",
    "PLANNER_NAME",
    "Intent",
    "OfflinePlanner",
    "VideoAsk",
    "enhance_prompt",
    "parse_request",
]
