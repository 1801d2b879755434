#!/usr/bin/env bash
# Installs PgBouncer from Debian's packages: the pooler tests start a private one (transaction
# pooling) on loopback in front of PostgreSQL. Only the program is used; the package's own
# service is left stopped. Does nothing when pgbouncer exists.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then
    exit 0
fi

apt_install pgbouncer
