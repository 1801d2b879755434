"""Fresh PostgreSQL databases and flushed Redis dbs on the machine's shared servers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_TEST_DB = int(os.environ.get("TEST_REDIS_DB", "13"))


def pg_admin_dsn() -> str:
    return PG_ADMIN_URL


def execute_admin(sql: str) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def new_pg_database() -> tuple[str, str]:
    """Another fresh database (name, url), for tests that need an empty one."""
    name = f"statebridge_test_{uuid.uuid4().hex[:10]}"
    execute_admin(f'CREATE DATABASE "{name}"')
    return name, f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def drop_pg_database(name: str) -> None:
    execute_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def flushed_redis_db(db: int) -> Iterator[str]:
    """The URL of Redis db `db`, flushed before and after (skips when Redis is down)."""
    import redis

    url = f"{REDIS_BASE_URL}/{db}"
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    except Exception as exc:
        pytest.skip(f"Redis is not reachable at {url}: {exc}")
    yield url
    client.flushdb()
    client.close()
