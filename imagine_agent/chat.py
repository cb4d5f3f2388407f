"""Moved to ``imagine_agent.agent.chat``; this path keeps working."""

from __future__ import annotations

from .agent.chat import ChatSession as ChatSession
from .agent.chat import Turn as Turn
from .agent.chat import run_chat as run_chat

__all__ = ["ChatSession", "Turn", "run_chat"]
