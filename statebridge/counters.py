"""Server-wide counters (Phase 1's requestCount), shared by every instance."""

from __future__ import annotations

from typing import Protocol

import sqlalchemy as sa
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from statebridge.db.tables import counters


class Counters(Protocol):
    async def incr(self, name: str) -> int: ...
    async def get(self, name: str) -> int: ...


class SqlCounters:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = (postgresql if engine.dialect.name == "postgresql" else sqlite).insert

    async def incr(self, name: str) -> int:
        insert = self._insert(counters).values(name=name, value=1)
        statement = insert.on_conflict_do_update(
            index_elements=[counters.c.name], set_={"value": counters.c.value + 1}
        ).returning(counters.c.value)
        async with self.engine.begin() as conn:
            return int((await conn.execute(statement)).scalar_one())

    async def get(self, name: str) -> int:
        async with self.engine.connect() as conn:
            query = sa.select(counters.c.value).where(counters.c.name == name)
            value = (await conn.execute(query)).scalar_one_or_none()
            return int(value or 0)


class RedisCounters:
    """`INCR counter:{name}`: one atomic round trip, shared by every instance.

    While Redis is unreachable the database counter answers, so the stateless routes keep
    working (its numbers are separate from Redis's)."""

    def __init__(self, redis: Redis, fallback: Counters) -> None:
        self.redis = redis
        self.fallback = fallback

    async def incr(self, name: str) -> int:
        try:
            return int(await self.redis.incr(f"counter:{name}"))
        except RedisError:
            return await self.fallback.incr(name)

    async def get(self, name: str) -> int:
        try:
            return int(await self.redis.get(f"counter:{name}") or 0)
        except RedisError:
            return await self.fallback.get(name)
