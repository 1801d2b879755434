"""Sessions in the embedded SQLite file: each verb one IMMEDIATE transaction, so reading,
merging in Python and writing back is serialised against every other writer of the file."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from statebridge.db.engine import begin_immediate
from statebridge.db.tables import sessions
from statebridge.stores.sessions.base import Session, new_session_id
from statebridge.stores.sessions.sql import COLUMNS, SqlSessionStore, session_from_row
from statebridge.timeutil import utcnow


def bump(value: Any) -> int:
    """The next value of a counter kept in session data (Phase 1: `(n || 0) + 1`)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value + 1
    return 1


class SqliteSessionStore(SqlSessionStore):
    async def create(self, user_id: str, data: dict[str, Any]) -> Session:
        now = utcnow()
        expires, hard = self.lifetime.first_expiry(now)
        session = Session(new_session_id(), user_id, dict(data), now, now, expires, hard)
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.insert(sessions).values(
                    id=session.id,
                    user_id=user_id,
                    data=session.data,
                    created_at=now,
                    last_accessed=now,
                    expires_at=expires,
                    max_expires_at=hard,
                )
            )
        return session

    async def _touch_returning(
        self,
        conn: AsyncConnection,
        session_id: str,
        now: datetime,
        strict: bool = False,
        **values: Any,
    ) -> Session | None:
        statement = (
            sa.update(sessions)
            .where(self._live(session_id, now, strict))
            .values(last_accessed=now, expires_at=self._expiry(now), **values)
            .returning(*COLUMNS)
        )
        row = (await conn.execute(statement)).first()
        return session_from_row(row) if row else None

    async def get(self, session_id: str, strict: bool = False) -> Session | None:
        """The live session, its expiry slid; `strict`: live by the row's own expiry, without
        the grace given to a copy that may lag."""
        async with self.engine.begin() as conn:
            return await self._touch_returning(conn, session_id, utcnow(), strict)

    async def touch(self, session_id: str) -> bool:
        return await self.get(session_id) is not None

    async def update(self, session_id: str, patch: dict[str, Any]) -> Session | None:
        now = utcnow()
        async with begin_immediate(self.engine) as conn:
            merged = await self._merged(conn, session_id, now, patch)
            if merged is None:
                return None
            return await self._touch_returning(
                conn, session_id, now, data=merged, version=sessions.c.version + 1
            )

    async def increment(
        self, session_id: str, key: str, patch: dict[str, Any]
    ) -> tuple[Session, int] | None:
        now = utcnow()
        async with begin_immediate(self.engine) as conn:
            merged = await self._incremented(conn, session_id, now, key, patch)
            if merged is None:
                return None
            session = await self._touch_returning(
                conn, session_id, now, data=merged, version=sessions.c.version + 1
            )
        if session is None:
            return None
        return session, int(session.data[key])

    async def _merged(
        self, conn: AsyncConnection, session_id: str, now: datetime, patch: dict[str, Any]
    ) -> Any:
        """The session's new `data` (`data || patch`), or None when it is not live."""
        current = await self._read_data(conn, session_id, now)
        return None if current is None else {**current, **patch}

    async def _incremented(
        self, conn: AsyncConnection, session_id: str, now: datetime, key: str, patch: dict[str, Any]
    ) -> Any:
        """The new `data` with `key` counted up by one, or None when it is not live."""
        existing = await self._read_data(conn, session_id, now)
        if existing is None:
            return None
        return {**existing, **patch, key: bump(existing.get(key))}

    async def _read_data(
        self, conn: AsyncConnection, session_id: str, now: datetime
    ) -> dict[str, Any] | None:
        query = sa.select(sessions.c.data).where(self._live(session_id, now))
        row = (await conn.execute(query)).first()
        return None if row is None else dict(row.data or {})

    async def destroy(self, session_id: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                sa.delete(sessions).where(self._live(session_id, utcnow())).returning(sessions.c.id)
            )
            return result.first() is not None
