#!/usr/bin/env bash
# Installs wrk from Debian's packages: `statebridge bench` drives it when it is there (the
# asyncio fallback is slower than the servers it measures), and tests/system/test_bench.py runs
# the bench through it. Does nothing when wrk is already installed.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

if command -v wrk >/dev/null 2>&1; then
    exit 0
fi

apt_install wrk
