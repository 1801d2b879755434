"""Two statebridge instances sharing one backend, for each backend a session feature must
work on: the embedded file (one data directory), PostgreSQL alone, PostgreSQL + Redis."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import drop_pg_database, new_pg_database
from tests.support.servers import Server

BACKENDS = ["embedded", "postgresql", "postgresql+redis"]


@contextlib.contextmanager
def backend_env(kind: str, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The environment of `kind`; a fresh PostgreSQL database for the PostgreSQL kinds."""
    if kind == "embedded":
        yield {}
        return
    try:
        name, url = new_pg_database()
    except Exception as exc:
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    try:
        if kind == "postgresql":
            yield {"DATABASE_URL": url, "STATEBRIDGE_SESSION_BACKEND": "sql"}
        else:
            yield {"DATABASE_URL": url, "REDIS_URL": request.getfixturevalue("redis_url")}
    finally:
        drop_pg_database(name)


@contextlib.contextmanager
def running_pair(
    env: dict[str, str], data_dir: Path, extra: dict[str, str] | None = None
) -> Iterator[tuple[Server, Server]]:
    """Two instances on `env`, the first migrating, sharing `data_dir` (the embedded file)."""
    env = {**env, **(extra or {})}
    first = Server(env, data_dir, ["--migrate"]).start()
    try:
        second = Server(env, data_dir).start()
    except BaseException:
        first.stop()
        raise
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()
