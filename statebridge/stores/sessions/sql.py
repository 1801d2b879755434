"""Sessions in the SQL `sessions` table: the embedded default, and PostgreSQL without Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from statebridge.db.engine import begin_immediate
from statebridge.db.tables import sessions
from statebridge.stores.sessions.base import Lifetime, Session, new_session_id
from statebridge.timeutil import utcnow

COLUMNS = (
    sessions.c.id,
    sessions.c.user_id,
    sessions.c.data,
    sessions.c.created_at,
    sessions.c.last_accessed,
    sessions.c.expires_at,
    sessions.c.max_expires_at,
    sessions.c.version,
)


# data || patch || {key: (data->>key as an integer, else 0) + 1}, in one statement
INCREMENT = sa.text(
    "sessions.data || CAST(:inc_patch AS jsonb) || jsonb_build_object(CAST(:inc_key AS text),"
    " CASE WHEN jsonb_typeof(sessions.data -> CAST(:inc_key AS text)) = 'number'"
    " AND (sessions.data ->> CAST(:inc_key AS text)) ~ '^-?[0-9]{1,15}$'"
    " THEN CAST(sessions.data ->> CAST(:inc_key AS text) AS bigint) ELSE 0 END + 1)"
)


SWEEP_LOCK = 0x5B_5E55  # the advisory lock id of the expired-session sweeper


def session_from_row(row: Any) -> Session:
    return Session(
        id=row.id,
        user_id=row.user_id,
        data=dict(row.data or {}),
        created_at=row.created_at,
        last_accessed=row.last_accessed,
        expires_at=row.expires_at,
        max_expires_at=row.max_expires_at,
        version=row.version,
    )


def bump(value: Any) -> int:
    """The next value of a counter kept in session data (Phase 1: `(n || 0) + 1`)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value + 1
    return 1


# a newer expiry only: a slower writer never moves it back
REFRESH = (
    sa.update(sessions)
    .where(sessions.c.id == sa.bindparam("sid"), sessions.c.expires_at < sa.bindparam("expires"))
    .values(last_accessed=sa.bindparam("last"), expires_at=sa.bindparam("expires"))
)


class SqlSessionStore:
    """Every verb is one atomic statement (PostgreSQL) or one IMMEDIATE transaction (SQLite);
    what differs between the two is in the subclasses below, chosen once by `sql_store`.

    `grace` widens what counts as live: in front of Redis the row's expires_at is refreshed
    lazily, so it may lag the true expiry by up to that much.
    """

    def __init__(
        self, engine: AsyncEngine, lifetime: Lifetime, grace: timedelta = timedelta(0)
    ) -> None:
        self.engine = engine
        self.lifetime = lifetime
        self.grace = grace

    def _expiry(self, now: datetime) -> sa.ColumnElement[Any]:
        sliding = now + self.lifetime.idle
        return sa.case(
            (sessions.c.max_expires_at < sliding, sessions.c.max_expires_at), else_=sliding
        )

    def _alive(self, now: datetime, strict: bool = False) -> sa.ColumnElement[bool]:
        return sa.and_(
            sessions.c.expires_at > (now if strict else now - self.grace),
            sa.or_(sessions.c.max_expires_at.is_(None), sessions.c.max_expires_at > now),
        )

    def _live(self, session_id: str, now: datetime, strict: bool = False) -> sa.ColumnElement[bool]:
        return sa.and_(sessions.c.id == session_id, self._alive(now, strict))

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
        raise NotImplementedError

    async def _incremented(
        self, conn: AsyncConnection, session_id: str, now: datetime, key: str, patch: dict[str, Any]
    ) -> Any:
        """The new `data` with `key` counted up by one, or None when it is not live."""
        raise NotImplementedError

    async def _may_sweep(self, conn: AsyncConnection) -> bool:
        """Whether this instance sweeps now."""
        return True

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

    async def count(self) -> int:
        query = sa.select(sa.func.count()).select_from(sessions)
        async with self.engine.connect() as conn:
            result = await conn.execute(query.where(sessions.c.expires_at > utcnow()))
            return int(result.scalar_one())

    async def live_batches(self, size: int) -> AsyncIterator[list[Session]]:
        """Every live session, streamed in batches (for warming a cache)."""
        now = utcnow()
        query = sa.select(*COLUMNS).where(self._alive(now))
        async with self.engine.connect() as conn:
            result = await conn.stream(query.execution_options(yield_per=size))
            async for rows in result.partitions(size):
                yield [session_from_row(row) for row in rows]

    async def refresh_expiries(self, refreshes: list[tuple[str, datetime, datetime]]) -> None:
        """Write newer expiries to their rows, (id, last accessed, expires) each: the Redis
        backend's lazy refresh. One transaction for all of them, the rows taken in id order
        so that instances refreshing the same sessions never wait on each other in a cycle."""
        if not refreshes:
            return
        params = [
            {"sid": session_id, "last": last, "expires": expires}
            for session_id, last, expires in sorted(refreshes)
        ]
        async with self.engine.begin() as conn:
            await conn.execute(REFRESH, params)

    async def sweep(self) -> int:
        """Delete expired rows (their carts cascade); returns how many.

        On PostgreSQL only the instance holding the advisory lock sweeps, so several
        instances never race over the same rows."""
        now = utcnow()
        expired = sa.or_(sessions.c.expires_at < now - self.grace, sessions.c.max_expires_at < now)
        async with self.engine.begin() as conn:
            if not await self._may_sweep(conn):
                return 0
            result = await conn.execute(sa.delete(sessions).where(expired))
            return int(result.rowcount or 0)

    async def close(self) -> None:
        return None


class PostgresSessionStore(SqlSessionStore):
    """PostgreSQL: merges and counts inside the UPDATE (jsonb), so each write is one
    statement whatever runs beside it; one instance sweeps at a time (an advisory lock)."""

    async def _merged(
        self, conn: AsyncConnection, session_id: str, now: datetime, patch: dict[str, Any]
    ) -> Any:
        return sessions.c.data.op("||")(sa.bindparam("patch", patch, type_=JSONB))

    async def _incremented(
        self, conn: AsyncConnection, session_id: str, now: datetime, key: str, patch: dict[str, Any]
    ) -> Any:
        return INCREMENT.bindparams(sa.bindparam("inc_patch", patch, type_=JSONB), inc_key=key)

    async def _may_sweep(self, conn: AsyncConnection) -> bool:
        locked = await conn.execute(
            sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": SWEEP_LOCK}
        )
        return bool(locked.scalar_one())


class SqliteSessionStore(SqlSessionStore):
    """SQLite: the write transaction begins IMMEDIATE, so reading, merging in Python and
    writing back is serialised against every other writer of the file."""

    async def _merged(
        self, conn: AsyncConnection, session_id: str, now: datetime, patch: dict[str, Any]
    ) -> Any:
        current = await self._read_data(conn, session_id, now)
        return None if current is None else {**current, **patch}

    async def _incremented(
        self, conn: AsyncConnection, session_id: str, now: datetime, key: str, patch: dict[str, Any]
    ) -> Any:
        existing = await self._read_data(conn, session_id, now)
        if existing is None:
            return None
        return {**existing, **patch, key: bump(existing.get(key))}


def sql_store(
    engine: AsyncEngine, lifetime: Lifetime, grace: timedelta = timedelta(0)
) -> SqlSessionStore:
    """The SQL session store for this engine's database."""
    if engine.dialect.name == "postgresql":
        return PostgresSessionStore(engine, lifetime, grace)
    return SqliteSessionStore(engine, lifetime, grace)
