#!/usr/bin/env bash
# The official x402 implementations (npm, pinned by tests/interop/node/package-lock.json) for the interop
# tests. Idempotent: node_modules installed from this very lockfile is kept. Quiet on success.
set -euo pipefail
cd "$(dirname "$0")/../tests/interop/node"
command -v node >/dev/null || { echo "setup-interop: node is not installed (node 20+ needed)" >&2; exit 1; }
command -v npm >/dev/null || { echo "setup-interop: npm is not installed" >&2; exit 1; }
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ -f node_modules/.lock-sha256 ] && [ "$(cat node_modules/.lock-sha256)" = "$want" ]; then
    exit 0
fi
npm ci --no-audit --no-fund --loglevel=error >/dev/null
echo "$want" > node_modules/.lock-sha256
