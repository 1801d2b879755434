"""The Redis session store keeps a deleted session deleted, whatever snapshot of it reaches
Redis after the delete: one read before it by a warm-up, or an update's that PostgreSQL took
just before it. The race itself, through a server, is in tests/api/test_hostile_protocol.py;
here the late snapshot is written on purpose, so the outcome does not depend on timing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from redis.asyncio import Redis

from statebridge.catalog.repository import seed_if_empty
from statebridge.config import Settings
from statebridge.db.engine import create_engine
from statebridge.stores.pgpool import PgPool
from statebridge.stores.sessions.base import Lifetime
from statebridge.stores.sessions.redis import RedisSessionStore, session_key
from statebridge.stores.sessions.sql import sql_store

pytestmark = pytest.mark.services

LIFETIME = Lifetime(timedelta(minutes=15), timedelta(days=1))
REFRESH = timedelta(seconds=60)


async def test_a_snapshot_written_after_the_delete_does_not_bring_the_session_back(
    services: dict[str, str],
) -> None:
    engine = create_engine(Settings(database_url=services["DATABASE_URL"]).effective_database_url)
    await seed_if_empty(engine)
    redis = Redis.from_url(services["REDIS_URL"])
    sql = sql_store(engine, LIFETIME, grace=REFRESH, pool=PgPool(engine))
    store = RedisSessionStore(redis, sql, LIFETIME, REFRESH)
    try:
        await store.warm()  # as at start: a read Redis cannot answer starts no warm-up
        session = await store.create("user001", {})
        updated = await store.update(session.id, {"k": 1})
        assert updated is not None and updated.version > session.version
        assert await store.destroy(session.id)
        await store.cache_many([session, updated])  # read before the delete, written after
        assert await store.get(session.id) is None
        key = session_key(session.id)
        assert await redis.hget(key, "id") is None
        assert 0 < await redis.pttl(key) <= LIFETIME.idle / timedelta(milliseconds=1)
        assert await store.count() == 0
        # the tombstone is that session's alone: another is cached and read as usual
        other = await store.create("user001", {"n": 2})
        found = await store.get(other.id)
        assert found is not None and found.data == {"n": 2}
        assert await redis.hget(session_key(other.id), "id") == other.id.encode()
    finally:
        await store.close()
        await engine.dispose()
