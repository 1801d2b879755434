"""Counters in the database's `counters` table: one atomic upsert per batch of increments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from statebridge.db.tables import counters
from statebridge.stores.counters.base import PerName, handed_out

# INSERT ... ON CONFLICT is dialect-specific in SQLAlchemy; the statement is the same
UPSERT: dict[str, Callable[..., Any]] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


class SqlCounters:
    """Increments that arrive together are one upsert adding their number (the callers get
    top-n+1 .. top, each number once); reads that arrive together share one SELECT. The
    embedded SQLite file has a subclass that runs both on the loop's own connection."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = UPSERT[engine.dialect.name]
        self._increments = PerName(self._allocate)
        self._reads = PerName(self._read_for)

    async def incr(self, name: str) -> int:
        return await self._increments.submit(name)

    async def _allocate(self, name: str, callers: list[None]) -> list[int]:
        count = len(callers)
        top = await self._add(self._adding(name, count))
        return handed_out(top, count)

    def _adding(self, name: str, count: int) -> Any:
        """The upsert that adds `count` and returns the new value."""
        insert = self._insert(counters).values(name=name, value=count)
        return insert.on_conflict_do_update(
            index_elements=[counters.c.name], set_={"value": counters.c.value + count}
        ).returning(counters.c.value)

    async def _add(self, statement: Any) -> int:
        async with self.engine.begin() as conn:
            return int((await conn.execute(statement)).scalar_one())

    async def get(self, name: str) -> int:
        return await self._reads.submit(name)

    async def _read_for(self, name: str, callers: list[None]) -> list[int]:
        return [await self._read(name)] * len(callers)

    async def _read(self, name: str) -> int:
        async with self.engine.connect() as conn:
            value = (await conn.execute(reading(name))).scalar_one_or_none()
            return int(value or 0)


def reading(name: str) -> Any:
    return sa.select(counters.c.value).where(counters.c.name == name)
