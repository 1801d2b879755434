#!/usr/bin/env bash
# TEST-ONLY. Makes local stand-ins for the official base images (python:3.11-slim-bookworm,
# postgres:15, redis:7-alpine, nginx:1.27-alpine) on a machine that cannot pull from a
# registry, so that the container tests can build the unmodified Dockerfile and run the
# compose stack. Production keeps the official images: nothing here is used by a deployment.
#
#   bash scripts/standin-images.sh          # prints the four image names when done
#
# The python stand-in is a Debian bookworm minbase made with debootstrap (Python 3.11, venv,
# the `python` command), with this machine's Debian mirror, CA bundle and pip configuration
# copied in, so that apt-get and pip work inside `docker build`. The other three are built
# FROM it with Debian's packages and behave as the official images do where the compose files
# rely on it: the same commands (`postgres`, `redis-server`, `nginx -g 'daemon off;'`), ports,
# health-check programs (pg_isready, redis-cli) and, for PostgreSQL, the first-start
# initialisation from POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB.
#
# An image that already exists is kept (delete it with `docker rmi` to rebuild it).
# Needs root (debootstrap), docker and debootstrap (scripts/ci-install-docker.sh).
set -euo pipefail

# Debian's client matches Debian's engine (scripts/ci-install-docker.sh); another on PATH otherwise.
DOCKER=${DOCKER:-$(command -v /usr/bin/docker || echo docker)}
SUITE=bookworm
PYTHON_IMAGE=${STANDIN_PYTHON_IMAGE:-statebridge-standin/python:3.11-bookworm}
POSTGRES_IMAGE=${STANDIN_POSTGRES_IMAGE:-statebridge-standin/postgres:15}
REDIS_IMAGE=${STANDIN_REDIS_IMAGE:-statebridge-standin/redis:7}
NGINX_IMAGE=${STANDIN_NGINX_IMAGE:-statebridge-standin/nginx:1.22}

log() { printf '[standin %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

have_image() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

# The Debian mirror this machine's apt uses (one-line or deb822 sources), else Debian's own.
debian_mirror() {
    local uri
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
            2>/dev/null \
        | grep -oE '(https?|file)://[^ ]+/debian/?( |$)' | grep -v -- '-security' | head -n1 \
        | tr -d ' ' || true)
    echo "${uri:-http://deb.debian.org/debian}"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ---- python: debootstrap minbase, imported as an image ----
if have_image "$PYTHON_IMAGE"; then
    log "$PYTHON_IMAGE exists, kept"
else
    mirror=$(debian_mirror)
    mirror=${mirror%/}
    log "debootstrap $SUITE minbase from $mirror (a few minutes)"
    root="$work/root"
    debootstrap --variant=minbase \
        --include=python3,python3-venv,python-is-python3,ca-certificates \
        "$SUITE" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -n 30 "$work/debootstrap.log" >&2; log "debootstrap failed"; exit 1; }
    log "configuring the root file system"
    {
        echo "deb $mirror $SUITE main"
        echo "deb $mirror $SUITE-updates main"
        echo "deb ${mirror%/debian}/debian-security $SUITE-security main"
    } >"$root/etc/apt/sources.list"
    # This machine's apt settings that reach the mirror (proxy, snapshot validity).
    for conf in /etc/apt/apt.conf.d/*; do
        [ -f "$conf" ] || continue
        if grep -qE 'Acquire::(https?::)?Proxy|Check-Valid-Until' "$conf"; then
            cp "$conf" "$root/etc/apt/apt.conf.d/"
        fi
    done
    # No services start while packages install during `docker build`.
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 755 "$root/usr/sbin/policy-rc.d"
    # Keep the image small, as the official slim images do.
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
        >"$root/etc/apt/apt.conf.d/90standin-norecommends"
    # This machine's CA bundle (a TLS-inspecting proxy's CA reaches pip and apt inside builds).
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
        cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
    fi
    # This machine's pip configuration (/etc/pip.conf), with the CA bundle above and what
    # PIP_INDEX_URL / PIP_DEFAULT_TIMEOUT add, so that pip reaches its index as the host does.
    python3 - "$root/etc/pip.conf" <<'PY'
import configparser, os, sys
conf = configparser.ConfigParser()
conf.read("/etc/pip.conf")
if not conf.has_section("global"):
    conf.add_section("global")
conf.set("global", "cert", "/etc/ssl/certs/ca-certificates.crt")
for env, key in (("PIP_INDEX_URL", "index-url"), ("PIP_DEFAULT_TIMEOUT", "timeout")):
    if os.environ.get(env):
        conf.set("global", key, os.environ[env])
with open(sys.argv[1], "w") as out:
    conf.write(out)
PY
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    log "importing $PYTHON_IMAGE"
    tar -C "$root" -c . | "$DOCKER" import \
        -c 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'CMD ["python3"]' - "$PYTHON_IMAGE" >/dev/null
    rm -rf "$root"
fi

build() {  # build IMAGE: the Dockerfile and files in $work/ctx
    log "building $1"
    "$DOCKER" build -q --network host -t "$1" "$work/ctx" >/dev/null \
        || { log "building $1 failed"; exit 1; }
    rm -rf "$work/ctx"
}

# ---- postgres: Debian's PostgreSQL 15, the official image's entrypoint behaviour ----
if have_image "$POSTGRES_IMAGE"; then
    log "$POSTGRES_IMAGE exists, kept"
else
    mkdir -p "$work/ctx"
    cat >"$work/ctx/Dockerfile" <<EOF
FROM $PYTHON_IMAGE
RUN mkdir -p /etc/postgresql-common/createcluster.d \\
    && echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/standin.conf \\
    && apt-get update && apt-get install -y postgresql-15 && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:\$PATH PGDATA=/var/lib/postgresql/data
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
ENTRYPOINT ["docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
EOF
    cat >"$work/ctx/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# As the official postgres image: a first start initialises $PGDATA with POSTGRES_USER
# (default postgres), POSTGRES_PASSWORD (required) and POSTGRES_DB (default: the user).
set -eu
if [ "${1:-}" = postgres ] && [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "Error: Database is uninitialized and superuser password is not specified." >&2
        exit 1
    fi
    user=${POSTGRES_USER:-postgres}
    db=${POSTGRES_DB:-$user}
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
        -D "$PGDATA" >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    if [ "$db" != postgres ]; then
        pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
        psql -v ON_ERROR_STOP=1 -U "$user" -d postgres -q -c "CREATE DATABASE \"$db\""
        pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    fi
    echo "PostgreSQL init process complete; ready for start up."
fi
exec "$@"
EOF
    chmod 755 "$work/ctx/docker-entrypoint.sh"
    build "$POSTGRES_IMAGE"
fi

# ---- redis: Debian's Redis 7, run as the redis user in /data ----
if have_image "$REDIS_IMAGE"; then
    log "$REDIS_IMAGE exists, kept"
else
    mkdir -p "$work/ctx"
    cat >"$work/ctx/Dockerfile" <<EOF
FROM $PYTHON_IMAGE
RUN apt-get update && apt-get install -y redis-server redis-tools && rm -rf /var/lib/apt/lists/* \\
    && mkdir -p /data && chown redis:redis /data
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /data
WORKDIR /data
ENTRYPOINT ["docker-entrypoint.sh"]
EXPOSE 6379
CMD ["redis-server"]
EOF
    cat >"$work/ctx/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# As the official redis image: redis-server runs as the redis user, owning /data.
set -eu
if [ "${1:-}" = redis-server ] && [ "$(id -u)" = 0 ]; then
    chown -R redis:redis /data
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
fi
exec "$@"
EOF
    chmod 755 "$work/ctx/docker-entrypoint.sh"
    build "$REDIS_IMAGE"
fi

# ---- nginx: Debian's nginx, logs to the container's output ----
if have_image "$NGINX_IMAGE"; then
    log "$NGINX_IMAGE exists, kept"
else
    mkdir -p "$work/ctx"
    cat >"$work/ctx/Dockerfile" <<EOF
FROM $PYTHON_IMAGE
RUN apt-get update && apt-get install -y nginx && rm -rf /var/lib/apt/lists/* \\
    && mkdir -p /var/cache/nginx \\
    && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
EXPOSE 80 443
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
EOF
    build "$NGINX_IMAGE"
fi

log "ready"
printf '%s\n' "$PYTHON_IMAGE" "$POSTGRES_IMAGE" "$REDIS_IMAGE" "$NGINX_IMAGE"
