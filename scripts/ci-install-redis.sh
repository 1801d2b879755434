#!/usr/bin/env bash
# Installs what the scale-out tests need from Debian's packages: redis-server (also runs the
# sentinels, as `redis-server sentinel.conf --sentinel`) and redis-tools (`redis-cli --cluster
# create`), for the private Sentinel sets and Clusters tests/support/redis_topologies.py
# starts on loopback. Does nothing when both exist.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    exit 0
fi

apt_install redis-server redis-tools
