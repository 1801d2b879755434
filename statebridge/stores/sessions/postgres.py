"""Sessions on PostgreSQL: every verb one statement on the stores' shared asyncpg pool
(statebridge/stores/pgpool.py), the calls of one event-loop turn sent together.

One write path for every change to a session (its data, preferences' timestamp, workflow,
visit counts): `write`, a merge `data || patch` and an optional counter bumped in the same
UPDATE, which also slides the expiry and bumps `version`. Creates, reads, writes and deletes
that arrive together go out as one statement each (batching.Coalescer, as the carts' adds
do), so under load a session write costs what a cart add costs: no BEGIN/COMMIT around it,
no connection opened per request. A write is acknowledged only once its statement has
committed (autocommit: the statement is its own transaction).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from statebridge.batching import Coalescer, rounds
from statebridge.stores.pgpool import PgPool
from statebridge.stores.sessions.base import Client, Lifetime, NewId, Session, UnknownUser
from statebridge.stores.sessions.sql import SWEEP_LOCK, SqlSessionStore
from statebridge.timeutil import utcnow

ROW = "s.id, s.user_id, s.data, s.created_at, s.last_accessed, s.expires_at, s.max_expires_at"
RETURNING = f"RETURNING {ROW}, s.version, s.client_address, s.user_agent"
SLIDE = "expires_at = CASE WHEN s.max_expires_at < $3 THEN s.max_expires_at ELSE $3 END"

CREATE_MANY = """
INSERT INTO sessions (id, user_id, data, created_at, last_accessed, expires_at, max_expires_at,
                      client_address, user_agent, sealed_id)
SELECT id, user_id, data, moment, moment, expires, hard, address, agent, sealed
FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::timestamp[], $5::timestamp[],
            $6::timestamp[], $7::text[], $8::text[], $9::text[])
     AS t(id, user_id, data, moment, expires, hard, address, agent, sealed)
"""
# $1 ids, $2 now, $3 now + idle, $4 live after (now, less the grace when not strict)
TOUCH_MANY = f"""
UPDATE sessions AS s SET last_accessed = $2, {SLIDE}
WHERE s.id = ANY($1::text[]) AND s.expires_at > $4
  AND (s.max_expires_at IS NULL OR s.max_expires_at > $2)
{RETURNING}
"""
# $1 ids, $5 patches, $6 counted keys (NULL: none); then as TOUCH_MANY. The counter is read
# from the old data: data || patch || {key: (data->>key as an integer, else 0) + 1}.
WRITE_MANY = f"""
WITH input AS (
    SELECT * FROM unnest($1::text[], $5::jsonb[], $6::text[]) AS t(id, patch, counted)
)
UPDATE sessions AS s
SET data = COALESCE(s.data, '{{}}'::jsonb) || input.patch || CASE
        WHEN input.counted IS NULL THEN '{{}}'::jsonb
        ELSE jsonb_build_object(input.counted, CASE
            WHEN jsonb_typeof(s.data -> input.counted) = 'number'
             AND (s.data ->> input.counted) ~ '^-?[0-9]{{1,15}}$'
            THEN CAST(s.data ->> input.counted AS bigint) ELSE 0 END + 1)
    END,
    version = s.version + 1, last_accessed = $2, {SLIDE}
FROM input
WHERE s.id = input.id AND s.expires_at > $4
  AND (s.max_expires_at IS NULL OR s.max_expires_at > $2)
{RETURNING}
"""
# $1 ids, $2 now, $3 live after
DESTROY_MANY = """
DELETE FROM sessions AS s
WHERE s.id = ANY($1::text[]) AND s.expires_at > $3
  AND (s.max_expires_at IS NULL OR s.max_expires_at > $2)
RETURNING s.id
"""

Write = tuple[str, dict[str, Any], str | None]  # session id, patch, key to count up


def session_of(row: Any) -> Session:
    return Session(
        id=row[0],
        user_id=row[1],
        data=orjson.loads(row[2]) if row[2] else {},
        created_at=row[3],
        last_accessed=row[4],
        expires_at=row[5],
        max_expires_at=row[6],
        version=row[7],
        client=Client(row[8], row[9]),
    )


class PostgresSessionStore(SqlSessionStore):
    def __init__(
        self,
        engine: AsyncEngine,
        lifetime: Lifetime,
        grace: timedelta = timedelta(0),
        pool: PgPool | None = None,
    ) -> None:
        super().__init__(engine, lifetime, grace)
        self.owns_pool = pool is None
        self.pool = pool or PgPool(engine)
        self._creates: Coalescer[Session, None] = Coalescer(self._create_many)
        self._reads: Coalescer[str, Session | None] = Coalescer(self._touch_many)
        self._strict_reads: Coalescer[str, Session | None] = Coalescer(self._touch_strict)
        self._writes: Coalescer[Write, Session | None] = Coalescer(self._write_many)
        self._destroys: Coalescer[str, bool] = Coalescer(self._destroy_many)

    def _moments(self, strict: bool) -> tuple[datetime, datetime, datetime]:
        """now, the slid expiry, and the expiry a live row has past."""
        now = utcnow()
        return now, now + self.lifetime.idle, now if strict else now - self.grace

    # -- create ---------------------------------------------------------------------------

    async def create(
        self,
        user_id: str,
        data: dict[str, Any],
        client: Client = Client(),
        new: NewId | None = None,
    ) -> Session:
        session = self.lifetime.new_session(user_id, data, client, new)
        try:
            await self._creates.submit(session)
        except asyncpg.ForeignKeyViolationError as exc:  # the user's row is gone
            raise UnknownUser(user_id) from exc
        return session

    async def _create_many(self, batch: list[Session]) -> list[BaseException | None]:
        columns = [
            [session.id for session in batch],
            [session.user_id for session in batch],
            [orjson.dumps(session.data).decode() for session in batch],
            [session.created_at for session in batch],
            [session.expires_at for session in batch],
            [session.max_expires_at for session in batch],
            [session.client.address for session in batch],
            [session.client.user_agent for session in batch],
            [session.sealed for session in batch],
        ]
        try:
            await self.pool.fetch_retrying(CREATE_MANY, *columns)
        except asyncpg.ForeignKeyViolationError:
            if len(batch) == 1:
                raise
            # a user deleted meanwhile: the others are made one by one, that one fails
            return [await self._create_alone(session) for session in batch]
        return [None] * len(batch)

    async def _create_alone(self, session: Session) -> BaseException | None:
        try:
            await self._create_many([session])
        except asyncpg.ForeignKeyViolationError as exc:
            refused: BaseException = exc
            return refused
        return None

    # -- read (touch) ---------------------------------------------------------------------

    async def get(self, session_id: str, strict: bool = False) -> Session | None:
        reads = self._strict_reads if strict else self._reads
        return await reads.submit(session_id)

    async def _touch_many(self, ids: list[str], strict: bool = False) -> list[Session | None]:
        now, slid, live_after = self._moments(strict)
        rows = await self.pool.fetch_retrying(TOUCH_MANY, sorted(set(ids)), now, slid, live_after)
        found = {row[0]: session_of(row) for row in rows}
        return [found.get(session_id) for session_id in ids]

    async def _touch_strict(self, ids: list[str]) -> list[Session | None]:
        return await self._touch_many(ids, strict=True)

    # -- write: every change to a session -------------------------------------------------

    async def update(self, session_id: str, patch: dict[str, Any]) -> Session | None:
        return await self._writes.submit((session_id, patch, None))

    async def increment(
        self, session_id: str, key: str, patch: dict[str, Any]
    ) -> tuple[Session, int] | None:
        session = await self._writes.submit((session_id, patch, key))
        if session is None:
            return None
        return session, int(session.data[key])

    async def _write_many(self, batch: list[Write]) -> list[Session | None]:
        """Each session's writes in arrival order: one statement per round (a statement
        cannot change a row twice), the rows in id order."""
        results: list[Session | None] = [None] * len(batch)
        for indexes in rounds([write[0] for write in batch]):
            indexes.sort(key=lambda index: batch[index][0])
            now, slid, live_after = self._moments(strict=False)
            rows = await self.pool.fetch_retrying(
                WRITE_MANY,
                [batch[index][0] for index in indexes],
                now,
                slid,
                live_after,
                [orjson.dumps(batch[index][1]).decode() for index in indexes],
                [batch[index][2] for index in indexes],
            )
            found = {row[0]: session_of(row) for row in rows}
            for index in indexes:
                results[index] = found.get(batch[index][0])
        return results

    # -- destroy --------------------------------------------------------------------------

    async def destroy(self, session_id: str) -> bool:
        return await self._destroys.submit(session_id)

    async def _destroy_many(self, ids: list[str]) -> list[bool]:
        now, _slid, live_after = self._moments(strict=False)
        rows = await self.pool.fetch_retrying(DESTROY_MANY, sorted(set(ids)), now, live_after)
        gone = {row[0] for row in rows}
        # two deletes of one session in a batch: the first caller is told it ended it
        answered: set[str] = set()
        results = []
        for session_id in ids:
            results.append(session_id in gone and session_id not in answered)
            answered.add(session_id)
        return results

    async def _may_sweep(self, conn: AsyncConnection) -> bool:
        """One instance sweeps at a time: the one holding the advisory lock."""
        locked = await conn.execute(
            sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": SWEEP_LOCK}
        )
        return bool(locked.scalar_one())

    async def close(self) -> None:
        if self.owns_pool:
            await self.pool.close()
