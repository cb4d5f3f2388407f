"""The video agent and what it talks through: ``agent`` (LangChain ``create_agent`` with the Imagine tools),
``chat`` (``imagine-agent chat``), ``planner/`` (the offline, rule-based planner).

Names load lazily: importing ``imagine_agent.agent.planner.intent`` (the plugin reads durations there) must not
load LangChain.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .agent import ImagineContext as ImagineContext
    from .agent import VideoReport as VideoReport
    from .agent import build_agent as build_agent
    from .agent import chat_model as chat_model
    from .agent import system_prompt as system_prompt

__all__ = ["ImagineContext", "VideoReport", "build_agent", "chat_model", "system_prompt"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module(f"{__name__}.agent"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
