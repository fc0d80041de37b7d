#!/usr/bin/env bash
# Installs Debian's Chromium for tests/test_preview_browser.py when it is missing.
# Playwright drives this system browser: no browser download of its own.
set -euo pipefail
bash "$(dirname "$0")/postgres_setup.sh"  # the tests on a real PostgreSQL need its server
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "browser_setup: chromium missing and cannot apt-get it here; browser tests will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null || true
apt-get install -y -q --no-install-recommends chromium >/dev/null \
    || echo "browser_setup: apt-get install chromium failed; browser tests will skip" >&2
