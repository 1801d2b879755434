#!/usr/bin/env bash
# Installs what the monitoring tests need from Debian's packages: prometheus (the server the
# end-to-end monitoring test starts on loopback, and promtool, which checks and unit-tests the
# rules in deploy/monitoring) and prometheus-alertmanager (amtool, which checks the
# Alertmanager example). Does nothing when all three exist.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 \
    && command -v amtool >/dev/null 2>&1; then
    exit 0
fi

apt_install prometheus prometheus-alertmanager
