"""The offline planner, one concern per module: ``intent`` (reading a message), ``enhance`` (the prompt),
``narrate`` (what it writes), ``model`` (``OfflinePlanner``, the LangChain chat model that plans the tool flow).

Names load lazily: the plugin reads durations through ``intent`` without loading LangChain.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .enhance import enhance_prompt as enhance_prompt
    from .intent import Intent as Intent
    from .intent import VideoAsk as VideoAsk
    from .intent import parse_request as parse_request
    from .model import PLANNER_NAME as PLANNER_NAME
    from .model import OfflinePlanner as OfflinePlanner
    from .narrate import PLANNER_LABEL as PLANNER_LABEL

__all__ = [
    "PLANNER_LABEL",
    "PLANNER_NAME",
    "Intent",
    "OfflinePlanner",
    "VideoAsk",
    "enhance_prompt",
    "parse_request",
]
_HOMES = {
    "PLANNER_LABEL": "narrate",
    "PLANNER_NAME": "model",
    "Intent": "intent",
    "OfflinePlanner": "model",
    "VideoAsk": "intent",
    "enhance_prompt": "enhance",
    "parse_request": "intent",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
