"""README.md split into its sections and code blocks, for the tests that run what it shows."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SURFACES_TITLE = "## Use it from your agent"


def section(title: str, text: str = README) -> str:
    """The text under a ``## `` heading, up to the next one."""
    start = text.index(title)
    end = text.find("\n## ", start + len(title))
    return text[start:] if end == -1 else text[start:end]


def blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block."""
    return re.findall(r"```(\w+)\n(.*?)```", text, re.S)


def blocks_outside(title: str) -> list[tuple[str, str]]:
    return blocks(README.replace(section(title), ""))
