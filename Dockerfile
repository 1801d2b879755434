# statebridge container image.
#
#   docker build -t statebridge .
#   docker run -p 8000:8000 -e DATABASE_URL=... -e REDIS_URL=... statebridge
#
# STATEBRIDGE_MIGRATE=1 upgrades the database schema (Alembic) before serving; without it a
# stale schema stops the start-up with a clear message. Run migrations from one place only
# (the prod compose file has a one-shot `migrate` service), never from many replicas at once.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: compilers live here only, for any dependency without a binary wheel ----
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/statebridge
WORKDIR /src
# Every dependency at the version requirements.lock pins (scripts/lock writes it): two builds
# a month apart install the same versions. The lock pins the dev tools too; -c only constrains.
COPY pyproject.toml README.md requirements.lock ./
COPY statebridge ./statebridge
RUN /opt/statebridge/bin/pip install --upgrade pip \
    && /opt/statebridge/bin/pip install -c requirements.lock .

# ---- runtime: the virtualenv and nothing else ----
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 statebridge \
    && useradd --system --uid 10001 --gid statebridge --home-dir /var/lib/statebridge \
       --create-home --shell /usr/sbin/nologin statebridge
COPY --from=build /opt/statebridge /opt/statebridge
ENV PATH=/opt/statebridge/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STATEBRIDGE_HOST=0.0.0.0 \
    STATEBRIDGE_PORT=8000 \
    STATEBRIDGE_DATA_DIR=/var/lib/statebridge/data \
    STATEBRIDGE_MIGRATE=0
WORKDIR /var/lib/statebridge
USER statebridge:statebridge
EXPOSE 8000 3001 3002

# Ready = the app can reach its database (Redis down: still ready, degraded); no curl in a
# slim image, so Python asks.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/ready' % os.environ.get('STATEBRIDGE_PORT', '8000'), timeout=4)" || exit 1

# exec: statebridge is PID 1 and gets SIGTERM itself, for a graceful shutdown.
CMD ["/bin/sh", "-c", "case \"$STATEBRIDGE_MIGRATE\" in 1|true|yes) exec statebridge serve --migrate ;; *) exec statebridge serve ;; esac"]
