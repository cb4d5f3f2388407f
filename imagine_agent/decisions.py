"""Moved to ``imagine_agent.service.decisions``; this path keeps its names."""

from __future__ import annotations

from .service.decisions import Asker as Asker
from .service.decisions import CoinDecision as CoinDecision
from .service.decisions import PersonDecision as PersonDecision
from .service.decisions import decide_coin as decide_coin
from .service.decisions import person_needed as person_needed
from .service.decisions import price_bound as price_bound

__all__ = ["Asker", "CoinDecision", "PersonDecision", "decide_coin", "person_needed", "price_bound"]
