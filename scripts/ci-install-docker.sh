#!/usr/bin/env bash
# Installs what the container tests (marker `containers`) need from Debian's packages:
# docker.io (the engine), docker-compose and debootstrap (scripts/standin-images.sh makes
# local stand-ins for the official base images when no registry is reachable). Starts the
# Docker engine when it is not running and waits for it (one already running is left as it
# is). Fails, loudly, when the engine does not come up: under CI the container tests must
# run, not skip.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

if ! [ -x /usr/sbin/dockerd ] || ! command -v docker-compose >/dev/null 2>&1 \
        || ! command -v debootstrap >/dev/null 2>&1; then
    apt_install docker.io docker-compose debootstrap
fi

# Debian's client, which matches Debian's engine.
DOCKER=/usr/bin/docker
if $SUDO "$DOCKER" info >/dev/null 2>&1; then
    exit 0
fi

# No init system to ask in a CI container: start the engine ourselves. No bridge and no
# iptables rules: the tests run every container on the host's network. Its pid goes to
# $CI_DOCKERD_PIDFILE when that is set: .ci/run stops, at its end, the engine started here.
log=/var/log/dockerd.log
echo "starting dockerd (log: $log)"
pid=$($SUDO sh -c "nohup /usr/sbin/dockerd --bridge=none --iptables=false --ip6tables=false \
    >>$log 2>&1 </dev/null & echo \$!")
if [ -n "${CI_DOCKERD_PIDFILE:-}" ]; then
    echo "$pid" >"$CI_DOCKERD_PIDFILE"
fi
for _ in $(seq 1 60); do
    if $SUDO "$DOCKER" info >/dev/null 2>&1; then
        echo "dockerd is running ($($SUDO "$DOCKER" info --format '{{.Driver}}') storage)"
        exit 0
    fi
    sleep 1
done
echo "dockerd did not start within 60 s; the end of $log:" >&2
$SUDO tail -n 40 "$log" >&2 || true
exit 1
