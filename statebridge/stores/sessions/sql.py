"""Sessions in the SQL `sessions` table: what the SQLite and PostgreSQL stores share (the
live test, counting, sweeping, warming a cache, the lazy expiry refresh), and `sql_store`,
which picks one. Each backend's verbs are in its own module: sqlite.py, postgres.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from statebridge.db.tables import sessions, shopping_carts
from statebridge.stores.pgpool import PgPool
from statebridge.stores.sessions.base import Client, Lifetime, NewId, Session, new_session_id
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
    sessions.c.client_address,
    sessions.c.user_agent,
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
        client=Client(row.client_address, row.user_agent),
    )


# a newer expiry only: a slower writer never moves it back
REFRESH = (
    sa.update(sessions)
    .where(sessions.c.id == sa.bindparam("sid"), sessions.c.expires_at < sa.bindparam("expires"))
    .values(last_accessed=sa.bindparam("last"), expires_at=sa.bindparam("expires"))
)


def regenerate_rows(
    conn: Connection,
    session_id: str,
    lifetime: Lifetime,
    live_after: datetime,
    new: NewId | None = None,
) -> Session | None:
    """In one transaction: the live row copied under a new id (touched, its version bumped),
    the cart's lines moved to it, the old row deleted. The old row is locked first (FOR
    UPDATE on PostgreSQL; SQLite's IMMEDIATE transaction locks the file), so a write to the
    old id lands either before the copy or on no row at all."""
    now = utcnow()
    old = sa.and_(
        sessions.c.id == session_id,
        sessions.c.expires_at > live_after,
        sa.or_(sessions.c.max_expires_at.is_(None), sessions.c.max_expires_at > now),
    )
    row = conn.execute(sa.select(*COLUMNS).where(old).with_for_update()).first()
    if row is None:
        return None
    session = session_from_row(row)
    session.id = new.key if new else new_session_id()
    session.last_accessed = now
    session.expires_at = lifetime.next_expiry(now, session.max_expires_at)
    session.version += 1
    conn.execute(
        sa.insert(sessions).values(
            id=session.id,
            user_id=session.user_id,
            data=session.data,
            created_at=session.created_at,
            last_accessed=now,
            expires_at=session.expires_at,
            max_expires_at=session.max_expires_at,
            version=session.version,
            client_address=session.client.address,
            user_agent=session.client.user_agent,
            sealed_id=new.sealed if new else None,
        )
    )
    conn.execute(
        sa.update(shopping_carts)
        .where(shopping_carts.c.session_id == session_id)
        .values(session_id=session.id)
    )
    conn.execute(sa.delete(sessions).where(sessions.c.id == session_id))
    return session


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

    def _alive(self, now: datetime, strict: bool = False) -> sa.ColumnElement[bool]:
        return sa.and_(
            sessions.c.expires_at > (now if strict else now - self.grace),
            sa.or_(sessions.c.max_expires_at.is_(None), sessions.c.max_expires_at > now),
        )

    def _live(self, session_id: str, now: datetime, strict: bool = False) -> sa.ColumnElement[bool]:
        return sa.and_(sessions.c.id == session_id, self._alive(now, strict))

    async def create(
        self,
        user_id: str,
        data: dict[str, Any],
        client: Client = Client(),
        new: NewId | None = None,
    ) -> Session:
        raise NotImplementedError

    async def get(self, session_id: str, strict: bool = False) -> Session | None:
        """The live session, its expiry slid; `strict`: live by the row's own expiry, without
        the grace given to a copy that may lag."""
        raise NotImplementedError

    async def touch(self, session_id: str) -> bool:
        return await self.get(session_id) is not None

    async def update(self, session_id: str, patch: dict[str, Any]) -> Session | None:
        raise NotImplementedError

    async def increment(
        self, session_id: str, key: str, patch: dict[str, Any]
    ) -> tuple[Session, int] | None:
        raise NotImplementedError

    async def destroy(self, session_id: str) -> bool:
        raise NotImplementedError

    async def regenerate(self, session_id: str, new: NewId | None = None) -> Session | None:
        """`regenerate_rows` in one transaction on the engine."""
        live_after = utcnow() - self.grace
        async with self.engine.begin() as conn:
            return await conn.run_sync(regenerate_rows, session_id, self.lifetime, live_after, new)

    async def _may_sweep(self, conn: AsyncConnection) -> bool:
        """Whether this instance sweeps now."""
        return True

    async def count(self) -> int:
        query = sa.select(sa.func.count()).select_from(sessions)
        async with self.engine.connect() as conn:
            result = await conn.execute(query.where(sessions.c.expires_at > utcnow()))
            return int(result.scalar_one())

    async def of_user(self, user_id: str) -> list[Session]:
        """By the index on user_id; live by the row (with the grace of a lagging copy)."""
        query = (
            sa.select(*COLUMNS)
            .where(sessions.c.user_id == user_id, self._alive(utcnow()))
            .order_by(sessions.c.created_at, sessions.c.id)
        )
        async with self.engine.connect() as conn:
            return [session_from_row(row) for row in await conn.execute(query)]

    async def revoke(self, session_ids: list[str]) -> list[str]:
        if not session_ids:
            return []
        now = utcnow()
        statement = (
            sa.delete(sessions)
            .where(sessions.c.id.in_(sorted(set(session_ids))), self._alive(now))
            .returning(sessions.c.id)
        )
        async with self.engine.begin() as conn:
            return [row.id for row in await conn.execute(statement)]

    async def revoke_all(self) -> int:
        return (await self.delete_all())[1]

    async def delete_all(self) -> tuple[list[str], int]:
        """Every row goes (carts cascade): their ids, and how many were live."""
        live = sa.case((self._alive(utcnow(), strict=True), 1), else_=0)
        async with self.engine.begin() as conn:
            rows = list(await conn.execute(sa.delete(sessions).returning(sessions.c.id, live)))
        return [row[0] for row in rows], sum(row[1] for row in rows)

    async def users(self) -> int:
        query = sa.select(sa.func.count(sa.distinct(sessions.c.user_id))).where(
            self._alive(utcnow(), strict=True)
        )
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

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


def sql_store(
    engine: AsyncEngine,
    lifetime: Lifetime,
    grace: timedelta = timedelta(0),
    pool: PgPool | None = None,
) -> SqlSessionStore:
    """The SQL session store for this engine's database (PostgreSQL's on `pool`, the stores'
    shared asyncpg pool, or one of its own)."""
    if engine.dialect.name == "postgresql":
        from statebridge.stores.sessions.postgres import PostgresSessionStore

        return PostgresSessionStore(engine, lifetime, grace, pool)
    from statebridge.stores.sessions.sqlite import SqliteSessionStore

    return SqliteSessionStore(engine, lifetime, grace)
