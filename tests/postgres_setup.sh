#!/usr/bin/env bash
# Installs Debian's PostgreSQL server for the tests on a real database (tests/postgres.py)
# when it is missing. The tests start their own server from its binaries
# (/usr/lib/postgresql/*/bin) in a temporary directory: the package's own cluster is
# never used, and nothing here starts a service.
set -euo pipefail
if compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "postgres_setup: PostgreSQL missing and cannot apt-get it here; its tests will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null || true
apt-get install -y -q --no-install-recommends postgresql >/dev/null \
    || echo "postgres_setup: apt-get install postgresql failed; its tests will skip" >&2
