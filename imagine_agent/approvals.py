"""Moved: the queue approver to ``imagine_agent.wallet.approval``, its JSON shape to ``imagine_agent.service.results``.

This path keeps its names.
"""

from __future__ import annotations

from .service.results import approval_json as approval_json
from .wallet.approval import DEFAULT_APPROVAL_TTL as DEFAULT_APPROVAL_TTL
from .wallet.approval import QueueApprover as QueueApprover

__all__ = ["DEFAULT_APPROVAL_TTL", "QueueApprover", "approval_json"]
