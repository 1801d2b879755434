"""Fixtures of the command-line tests: fresh databases for `statebridge migrate`, `export`,
`backup` and `restore` to work on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.commands import REDIS_DB, statebridge
from tests.support.databases import drop_pg_database, flushed_redis_db, new_pg_database


@pytest.fixture
def pg_env() -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL database at the schema's head."""
    try:
        name, url = new_pg_database()
    except Exception as exc:
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    env = {"DATABASE_URL": url}
    upgraded = statebridge(env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    yield env
    drop_pg_database(name)


@pytest.fixture
def redis_env() -> Iterator[str]:
    """This module's own Redis db number, flushed before and after."""
    yield from flushed_redis_db(REDIS_DB)


@pytest.fixture
def services(pg_env: dict[str, str], redis_env: str) -> dict[str, str]:
    return {**pg_env, "REDIS_URL": redis_env}


@pytest.fixture
def sqlite_env(tmp_path: Path) -> dict[str, str]:
    """The embedded default: no DATABASE_URL, a fresh data directory."""
    return {"STATEBRIDGE_DATA_DIR": str(tmp_path / "data")}
