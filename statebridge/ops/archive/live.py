"""Reading sessions as the running servers see them, for the export and the backup.

With Redis in front, the `sessions` row's lastAccessed/expiresAt may lag the truth by up to
`session_db_refresh` (the servers refresh it lazily), so Redis's copy wins when it has one.
A row that Redis does not have (Redis lost it, or it ended more than that grace ago) is
taken with the latest expiry its lagging copy allows, as the servers do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncConnection

from statebridge.config import Settings
from statebridge.db.tables import sessions
from statebridge.ops.migrate.database import MigrateError
from statebridge.stores.sessions.base import Session
from statebridge.stores.sessions.redis import from_ms, session_key
from statebridge.stores.sessions.sql import COLUMNS, session_from_row

BATCH = 1000


def connect(settings: Settings) -> Redis | None:
    """The servers' Redis, when they keep sessions and counters there."""
    if not settings.redis_url or settings.effective_session_backend != "redis":
        return None
    from statebridge.wiring.services import connect_redis

    return connect_redis(settings.redis_url)


async def require(redis: Redis) -> None:
    """Fail early, in one line, when Redis is configured but unreachable."""
    try:
        await redis.ping()
    except RedisError as exc:
        raise MigrateError(f"cannot reach Redis at REDIS_URL: {exc}") from None


def overlay(settings: Settings, redis: Redis | None) -> RedisOverlay | None:
    """Redis's view of the sessions, when the servers keep them there."""
    if redis is None:
        return None
    return RedisOverlay(redis, timedelta(seconds=settings.session_db_refresh))


class RedisOverlay:
    def __init__(self, redis: Redis, grace: timedelta) -> None:
        self.redis = redis
        self.grace = grace

    async def start(self) -> None:
        await require(self.redis)

    async def apply(self, batch: list[Session]) -> list[tuple[Session, datetime]]:
        """The batch with Redis's times where Redis has them, each with the latest it may
        expire: Redis's expiry, or the table's plus the grace its lag allows (capped by the
        absolute lifetime)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for session in batch:
                pipe.hmget(session_key(session.id), "lastMs", "expiresMs")
            answers = await pipe.execute()
        kept = []
        for session, (last_ms, expires_ms) in zip(batch, answers, strict=True):
            if expires_ms is not None:
                session.last_accessed = from_ms(last_ms)
                session.expires_at = latest = from_ms(expires_ms)
            else:
                latest = session.expires_at + self.grace
                if session.max_expires_at is not None and session.max_expires_at < latest:
                    latest = session.max_expires_at
            kept.append((session, latest))
        return kept


def sealed(row: Any) -> Session:
    session = session_from_row(row)
    session.sealed = row.sealed_id
    return session


async def session_batches(
    conn: AsyncConnection,
    overlay: RedisOverlay | None,
    grace: timedelta,
    live_at: datetime | None,
    by_id: bool = False,
) -> AsyncIterator[list[Session]]:
    """Sessions in creation order (or by key), in batches, each with its sealed id; only
    those live at `live_at` when given."""
    order = [sessions.c.id] if by_id else [sessions.c.created_at, sessions.c.id]
    query = sa.select(*COLUMNS, sessions.c.sealed_id).order_by(*order)
    if live_at is not None:
        query = query.where(
            sessions.c.expires_at > live_at - grace,
            sa.or_(sessions.c.max_expires_at.is_(None), sessions.c.max_expires_at > live_at),
        )
    result = await conn.stream(query.execution_options(yield_per=BATCH))
    async for rows in result.partitions(BATCH):
        batch = [sealed(row) for row in rows]
        if overlay is not None:
            latest = await overlay.apply(batch)
        else:
            latest = [(session, session.expires_at) for session in batch]
        if live_at is not None:
            batch = [session for session, expiry in latest if expiry > live_at]
        if batch:
            yield batch
