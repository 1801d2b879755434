#!/usr/bin/env bash
# Installs wrk from Debian's packages: `statebridge bench` drives it when it is there (the
# asyncio fallback is slower than the servers it measures), and tests/system/test_bench.py runs
# the bench through it. Does nothing when wrk is already installed.
set -euo pipefail

if command -v wrk >/dev/null 2>&1; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends wrk
