"""The MCP server moved to ``imagine_agent.mcp``; this module keeps its names importable and
``python -m imagine_agent.mcp_server`` working."""

from __future__ import annotations

from .mcp import create_server as create_server
from .mcp import main as main
from .mcp import serve as serve
from .mcp.elicitation import HumanAsk as HumanAsk
from .mcp.elicitation import no_human_to_ask as no_human_to_ask
from .mcp.lazy import LazyService as LazyService
from .mcp.serve import check_settings as check_settings
from .mcp.tools import INSTRUCTIONS as INSTRUCTIONS

__all__ = ["create_server", "main", "serve"]

if __name__ == "__main__":
    main()
