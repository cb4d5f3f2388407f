"""Moved to ``imagine_agent.cli.approvals`` (``console`` to ``imagine_agent.cli.servers``); this path works."""

from __future__ import annotations

from .cli.approvals import approvals_app as approvals_app
from .cli.servers import console as console

__all__ = ["approvals_app", "console"]
