"""README.md and the reference pages in docs/, split into sections and code blocks, for the tests that pin them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"
# The reference pages of the site (mkdocs.yml); docs/changes/ holds notes of work in flight, not pages.
PAGES = sorted(DOCS.glob("*.md"))
SURFACES = "surfaces.md"  # every block of this page runs in tests/e2e/test_docs.py


def page(name: str) -> str:
    """The text of one reference page, ``docs/<name>``."""
    return (DOCS / name).read_text()


def section(title: str, text: str = README) -> str:
    """The text under a ``## `` heading, up to the next one."""
    start = text.index(title)
    end = text.find("\n## ", start + len(title))
    return text[start:] if end == -1 else text[start:end]


def blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block."""
    return re.findall(r"```(\w+)\n(.*?)```", text, re.S)


def links(text: str) -> list[str]:
    """The targets of every inline Markdown link and image, in order."""
    return re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", text)
