"""Counters in the embedded SQLite file: the SQL counters, run on the process's own
connection in the event loop's thread (statebridge/db/local.py), the increments in the
shared transaction (group commit)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from statebridge.db.local import local_sqlite
from statebridge.stores.counters.sql import SqlCounters, reading


class SqliteCounters(SqlCounters):
    async def _add(self, statement: Any) -> int:
        def work(conn: Connection) -> int:
            return int(conn.execute(statement).scalar_one())

        return await local_sqlite(self.engine).write(work)

    async def _read(self, name: str) -> int:
        value = await local_sqlite(self.engine).read(
            lambda conn: conn.execute(reading(name)).scalar_one_or_none()
        )
        return int(value or 0)
