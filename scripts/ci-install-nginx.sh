#!/usr/bin/env bash
# Installs what the deployment tests need from Debian's packages: nginx (the real reverse
# proxy the nginx-marked tests start on loopback) and docker-compose (validates the compose
# files with `docker-compose config`, no Docker engine needed). Does nothing when both exist.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    if command -v docker-compose >/dev/null 2>&1; then
        exit 0
    fi
fi

apt_install nginx docker-compose
