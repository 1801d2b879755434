#!/usr/bin/env bash
# Installs what the scale-out tests need from Debian's packages: redis-server (also runs the
# sentinels, as `redis-server sentinel.conf --sentinel`) and redis-tools (`redis-cli --cluster
# create`), for the private Sentinel sets and Clusters tests/support/redis_topologies.py
# starts on loopback. Does nothing when both exist.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends redis-server redis-tools
