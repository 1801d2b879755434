"""Counters in the database's `counters` table: one atomic upsert per increment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from statebridge.db.tables import counters

# INSERT ... ON CONFLICT is dialect-specific in SQLAlchemy; the statement is the same
UPSERT: dict[str, Callable[..., Any]] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


class SqlCounters:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = UPSERT[engine.dialect.name]

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
