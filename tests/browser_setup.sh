#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (tests/browser.py) when it is missing.
# Playwright drives this system browser: no browser download of its own.
set -euo pipefail
bash "$(dirname "$0")/postgres_setup.sh"  # the tests on a real PostgreSQL need its server
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
# chromium-headless-shell: the same browser without its user interface, which the tests
# prefer (a quarter less CPU, see tests/browser.py); chromium: docs/preview.md's screenshots
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -x /usr/lib/chromium/chromium-headless-shell ] || missing+=(chromium-headless-shell)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "browser_setup: ${missing[*]} missing and cannot apt-get it here; browser tests may skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null || true
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || echo "browser_setup: apt-get install ${missing[*]} failed; browser tests may skip" >&2
