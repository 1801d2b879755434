#!/usr/bin/env bash
# Installs what the monitoring tests need from Debian's packages: prometheus (the server the
# end-to-end monitoring test starts on loopback, and promtool, which checks and unit-tests the
# rules in deploy/monitoring) and prometheus-alertmanager (amtool, which checks the
# Alertmanager example). Does nothing when all three exist.
set -euo pipefail

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 \
    && command -v amtool >/dev/null 2>&1; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends prometheus \
    prometheus-alertmanager
