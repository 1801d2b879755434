"""Counters in Redis (`INCRBY counter:{name}`), shared by every instance, with the
database's counter answering while Redis is unreachable."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from statebridge.stores.counters.base import Counters, PerName, handed_out


class RedisCounters:
    """`INCRBY counter:{name}`, shared by every instance.

    Increments that arrive together share one round trip (statebridge/batching.py):
    `INCRBY n` returns the new top, and the callers get top-n+1 .. top in arrival order, so
    every number is still handed out exactly once. Reads that arrive together share one
    `GET`, sent after they arrived. While Redis is unreachable the database counter
    answers, so the stateless routes keep working (its numbers are separate from Redis's)."""

    def __init__(self, redis: Redis, fallback: Counters) -> None:
        self.redis = redis
        self.fallback = fallback
        self._increments = PerName(self._allocate)
        self._reads = PerName(self._read)

    async def incr(self, name: str) -> int:
        return await self._increments.submit(name)

    async def get(self, name: str) -> int:
        return await self._reads.submit(name)

    async def _allocate(self, name: str, callers: list[None]) -> list[int]:
        count = len(callers)
        try:
            top = int(await self.redis.incrby(f"counter:{name}", count))
        except RedisError:
            return [await self.fallback.incr(name) for _ in range(count)]
        return handed_out(top, count)

    async def _read(self, name: str, callers: list[None]) -> list[int]:
        try:
            value = int(await self.redis.get(f"counter:{name}") or 0)
        except RedisError:
            value = await self.fallback.get(name)
        return [value] * len(callers)
