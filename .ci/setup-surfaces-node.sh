#!/usr/bin/env bash
# The TypeScript MCP SDK client used by tests/mcp/test_mcp_typescript.py (installed from its lockfile).
set -euo pipefail
cd "$(dirname "$0")/../tests/mcp/node"
if [ ! -d node_modules/@modelcontextprotocol/sdk ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
