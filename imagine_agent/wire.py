"""The base of every wire model, Imagine's and x402's: camelCase on the wire, snake_case in Python.

Its own module so that ``models.py`` and ``x402/types.py`` share it without importing each other.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = ["WireModel"]


class WireModel(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown fields kept."""

    # Schemas are built on first use: a command validates a few of these models, and building all of them
    # at import was a fifth of its start.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow", defer_build=True)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)
