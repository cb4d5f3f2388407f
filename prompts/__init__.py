"""Markdown prompt templates (reached as ``imagine_agent.prompts``).

The files are package data, read with ``importlib.resources`` so they work from a wheel, a zip or a
checkout alike. Placeholders are ``$name`` (``string.Template``): a missing value is an error, never
a silently empty hole in a prompt that decides how money is spent.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from string import Template

__all__ = ["PROMPT_NAMES", "load_prompt", "render_prompt"]

PROMPT_NAMES = ("system", "enhance", "autoclank", "narrate")


@cache
def load_prompt(name: str) -> str:
    """The raw text of ``<name>.md``; only the names in ``PROMPT_NAMES`` exist."""
    if name not in PROMPT_NAMES:
        raise KeyError(f"no prompt named {name!r}; known: {', '.join(PROMPT_NAMES)}")
    return files(__name__).joinpath(f"{name}.md").read_text(encoding="utf-8")


def render_prompt(name: str, **values: object) -> str:
    """``<name>.md`` with every ``$placeholder`` filled; raises ``KeyError`` naming a missing one."""
    return Template(load_prompt(name)).substitute({k: str(v) for k, v in values.items()})
