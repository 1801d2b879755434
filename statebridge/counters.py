"""Server-wide counters (Phase 1's requestCount), shared by every instance."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol

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
    """`INCRBY counter:{name}`, shared by every instance.

    Increments that arrive in the same event-loop turn share one round trip: `INCRBY n`
    returns the new top, and the callers get top-n+1 .. top in arrival order, so every
    number is still handed out exactly once. Reads in the same turn share one `GET`.
    While Redis is unreachable the database counter answers, so the stateless routes keep
    working (its numbers are separate from Redis's)."""

    def __init__(self, redis: Redis, fallback: Counters) -> None:
        self.redis = redis
        self.fallback = fallback
        self._increments: dict[str, list[asyncio.Future[int]]] = {}
        self._reads: dict[str, asyncio.Future[int]] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # strong references while they run
        self._loop: asyncio.AbstractEventLoop | None = None

    async def incr(self, name: str) -> int:
        waiting = self._increments.get(name)
        if waiting is None or self._loop is None:
            # once per batch: on Python 3.11 asking for the running loop is a system call
            self._loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = self._loop.create_future()
        if waiting is None:
            self._increments[name] = [future]
            self._start(self._flush_increments(name))  # runs once this turn's callers joined
        else:
            waiting.append(future)
        return await future

    async def get(self, name: str) -> int:
        future = self._reads.get(name)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._reads[name] = future
            self._start(self._flush_read(name))
        return await asyncio.shield(future)

    def _start(self, flush: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(flush)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush_increments(self, name: str) -> None:
        waiting = self._increments.pop(name)
        try:
            values = await self._allocate(name, len(waiting))
        except BaseException as exc:  # the callers get the error; nobody awaits this task
            _fail(waiting, exc)
            return
        for future, value in zip(waiting, values, strict=True):
            if not future.done():
                future.set_result(value)

    async def _allocate(self, name: str, count: int) -> list[int]:
        try:
            top = int(await self.redis.incrby(f"counter:{name}", count))
        except RedisError:
            return [await self.fallback.incr(name) for _ in range(count)]
        return list(range(top - count + 1, top + 1))

    async def _flush_read(self, name: str) -> None:
        future = self._reads.pop(name)
        try:
            try:
                value = int(await self.redis.get(f"counter:{name}") or 0)
            except RedisError:
                value = await self.fallback.get(name)
        except BaseException as exc:
            _fail([future], exc)
            return
        if not future.done():
            future.set_result(value)


def _fail(futures: list[asyncio.Future[int]], exc: BaseException) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
