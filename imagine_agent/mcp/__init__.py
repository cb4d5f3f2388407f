"""The MCP server: the tools and resources (``tools.py``), a person's approval over elicitation
(``elicitation.py``), the service created on the first tool call (``lazy.py``) and serving (``serve.py``).

Inside this package ``import mcp`` still names the official SDK (imports are absolute).
"""

from __future__ import annotations

from .serve import main as main
from .serve import serve as serve
from .tools import create_server as create_server

__all__ = ["create_server", "main", "serve"]
