"""The request limits every surface states in its schema, kept apart so a surface can read them cheaply.

``imagine-agent mcp`` advertises them in ``tools/list`` before anything heavy is loaded; ``models``
enforces them.
"""

from __future__ import annotations

__all__ = ["MAX_DURATION", "MAX_PROMPT_CHARS", "MIN_DURATION"]

MAX_PROMPT_CHARS = 4000
MIN_DURATION, MAX_DURATION = 1, 60
