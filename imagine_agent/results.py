"""Moved to ``imagine_agent.service.results``; this path keeps its names."""

from __future__ import annotations

from .service.results import coin_line as coin_line
from .service.results import delivery_facts as delivery_facts

__all__ = ["coin_line", "delivery_facts"]
