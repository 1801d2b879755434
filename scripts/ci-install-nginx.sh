#!/usr/bin/env bash
# Installs what the deployment tests need from Debian's packages: nginx (the real reverse
# proxy the nginx-marked tests start on loopback) and docker-compose (validates the compose
# files with `docker-compose config`, no Docker engine needed). Does nothing when both exist.
set -euo pipefail

if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    if command -v docker-compose >/dev/null 2>&1; then
        exit 0
    fi
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends nginx docker-compose
