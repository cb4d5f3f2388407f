#!/usr/bin/env bash
# Install what the chain tests need, from pinned lockfiles (npm ci), idempotently; stdout stays quiet.
# - the devnet's packages (anvil 1.7.1, Circle's USDC) into the cache dir `imagine-agent devnet` uses
#   (the same path as imagine_agent.devnet.install_dir(): devnet- + 12 hex of the lockfile's SHA-256)
# - tests/chain/node: the official x402 v1 facilitator (x402@1.2.0 + viem)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "setup-chain.sh: $*" >&2; }
lock="imagine_agent/devnet_node/package-lock.json"
digest="$(sha256sum "$lock" | cut -c1-12)"
dir="${IMAGINE_DEVNET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/imagine-agent/devnet-$digest}"
if [ "${1:-}" = "--print-dir" ]; then echo "$dir"; exit 0; fi   # for the test that keeps both paths equal
command -v npm >/dev/null 2>&1 || { log "npm (Node.js 20+) is required"; exit 1; }

if [ ! -f "$dir/.installed" ] || [ ! -x "$dir/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil" ]; then
    log "installing the devnet's npm packages into $dir"
    mkdir -p "$dir"
    cp imagine_agent/devnet_node/package.json "$lock" "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2)
    echo ok > "$dir/.installed"
fi

if [ ! -d tests/chain/node/node_modules/x402 ] || [ tests/chain/node/package-lock.json -nt tests/chain/node/node_modules ]; then
    log "installing tests/chain/node (x402@1.2.0, viem)"
    (cd tests/chain/node && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2)
fi
