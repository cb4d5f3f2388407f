#!/usr/bin/env bash
# The console's browser tests drive Debian's Chromium (Playwright's own browser download is unreachable):
# install chromium and chromium-driver when missing. Idempotent; stdout stays quiet; fails loudly.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "setup-browser.sh: installing chromium and chromium-driver from Debian" >&2
$SUDO apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2
command -v chromium >/dev/null 2>&1 || { echo "setup-browser.sh: chromium is still missing" >&2; exit 1; }
