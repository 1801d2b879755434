#!/usr/bin/env bash
# Installs PgBouncer from Debian's packages: the pooler tests start a private one (transaction
# pooling) on loopback in front of PostgreSQL. Only the program is used; the package's own
# service is left stopped. Does nothing when pgbouncer exists.
set -euo pipefail

if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends pgbouncer >/dev/null
