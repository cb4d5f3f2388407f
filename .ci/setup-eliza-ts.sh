#!/usr/bin/env bash
# ElizaOS (TypeScript) with @elizaos/plugin-mcp, for tests/e2e/test_eliza_mcp.py (from its lockfile).
set -euo pipefail
cd "$(dirname "$0")/../examples/eliza-mcp"
if [ ! -d node_modules/@elizaos/plugin-mcp ] || [ ! -d node_modules/@elizaos/plugin-bootstrap ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
