"""Sessions in the embedded SQLite file, on the process's own connection in the event loop's
thread (statebridge/db/local.py): a read is a plain SELECT, its sliding expiry written in the
next shared transaction without the reader waiting for it (as the Redis backend refreshes
PostgreSQL's copy lazily); every write runs in that shared IMMEDIATE transaction (group
commit), so reading, merging in Python and writing back is serialised against every other
writer of the file."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from functools import cached_property, partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from statebridge.db.local import LocalSqlite, local_sqlite
from statebridge.db.tables import sessions
from statebridge.stores.sessions.base import Client, NewId, Session, UnknownUser
from statebridge.stores.sessions.sql import (
    COLUMNS,
    REFRESH,
    SqlSessionStore,
    regenerate_rows,
    session_from_row,
)
from statebridge.timeutil import utcnow

# built once: a statement made per call costs more to build and key than to run
LIVE = sa.and_(
    sessions.c.id == sa.bindparam("sid"),
    sessions.c.expires_at > sa.bindparam("after"),
    sa.or_(sessions.c.max_expires_at.is_(None), sessions.c.max_expires_at > sa.bindparam("now")),
)
LIVE_BY_ID = sa.select(*COLUMNS).where(LIVE)
DESTROY_BY_ID = sa.delete(sessions).where(LIVE).returning(sessions.c.id)
INSERT_ONE = sa.insert(sessions).values(
    id=sa.bindparam("sid"),
    user_id=sa.bindparam("user_id"),
    data=sa.bindparam("new_data", type_=sessions.c.data.type),
    created_at=sa.bindparam("created_at"),
    last_accessed=sa.bindparam("created_at"),
    expires_at=sa.bindparam("expires"),
    max_expires_at=sa.bindparam("hard"),
    client_address=sa.bindparam("address"),
    user_agent=sa.bindparam("agent"),
    sealed_id=sa.bindparam("sealed"),
)
DATA_BY_ID = sa.select(sessions.c.data).where(LIVE)
# the new data, the expiry slid (never past the absolute end), the version bumped
WRITE_BY_ID = (
    sa.update(sessions)
    .where(LIVE)
    .values(
        data=sa.bindparam("new_data", type_=sessions.c.data.type),
        last_accessed=sa.bindparam("now"),
        expires_at=sa.case(
            (
                sessions.c.max_expires_at < sa.bindparam("slid"),
                sessions.c.max_expires_at,
            ),
            else_=sa.bindparam("slid"),
        ),
        version=sessions.c.version + 1,
    )
    .returning(*COLUMNS)
)


def bump(value: Any) -> int:
    """The next value of a counter kept in session data (Phase 1: `(n || 0) + 1`)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value + 1
    return 1


class SqliteSessionStore(SqlSessionStore):
    _slides: dict[str, tuple[datetime, datetime]] | None = None

    @cached_property
    def local(self) -> LocalSqlite:
        return local_sqlite(self.engine)

    async def create(
        self,
        user_id: str,
        data: dict[str, Any],
        client: Client = Client(),
        new: NewId | None = None,
    ) -> Session:
        session = self.lifetime.new_session(user_id, data, client, new)
        params = {
            "sid": session.id,
            "user_id": user_id,
            "new_data": session.data,
            "created_at": session.created_at,
            "expires": session.expires_at,
            "hard": session.max_expires_at,
            "address": client.address,
            "agent": client.user_agent,
            "sealed": session.sealed,
        }
        try:
            await self.local.write(partial(self.local.rows_in, statement=INSERT_ONE, params=params))
        except sqlite3.IntegrityError as exc:  # the user's row is gone: the foreign key
            raise UnknownUser(user_id) from exc
        return session

    async def get(self, session_id: str, strict: bool = False) -> Session | None:
        """The live session, its expiry slid: in the answer at once, in the file with the
        next shared transaction (only ever forward: a slide written late never takes back a
        later one)."""
        now = utcnow()
        params = {"sid": session_id, "now": now, "after": now if strict else now - self.grace}
        row = await self.local.select_first(LIVE_BY_ID, params)
        if row is None:
            return None
        session = session_from_row(row)
        session.last_accessed = now
        session.expires_at = self.lifetime.next_expiry(now, session.max_expires_at)
        self._slide(session)
        return session

    def _slide(self, session: Session) -> None:
        """Queue the session's new expiry; the slides queued meanwhile are one statement."""
        if self._slides is None:
            self._slides = {}
            self.local.write_later(self._write_slides)
        self._slides[session.id] = (session.last_accessed, session.expires_at)

    def _write_slides(self, conn: Connection) -> None:
        slides, self._slides = self._slides or {}, None
        params = [
            {"sid": session_id, "last": last, "expires": expires}
            for session_id, (last, expires) in sorted(slides.items())
        ]
        if params:
            self.local.each_in(conn, REFRESH, params)

    async def touch(self, session_id: str) -> bool:
        return await self.get(session_id) is not None

    def _params(self, session_id: str) -> dict[str, Any]:
        now = utcnow()
        return {
            "sid": session_id,
            "now": now,
            "after": now - self.grace,
            "slid": now + self.lifetime.idle,
        }

    def _rewrite(
        self, conn: Connection, session_id: str, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> Session | None:
        """Read the live session's data, write `change(data)` back: None if not live."""
        params = self._params(session_id)
        row = self.local.first_in(conn, DATA_BY_ID, params)
        if row is None:
            return None
        params["new_data"] = change(dict(row.data or {}))
        written = self.local.first_in(conn, WRITE_BY_ID, params)
        return session_from_row(written) if written else None

    async def update(self, session_id: str, patch: dict[str, Any]) -> Session | None:
        return await self.local.write(
            lambda conn: self._rewrite(conn, session_id, lambda data: {**data, **patch})
        )

    async def increment(
        self, session_id: str, key: str, patch: dict[str, Any]
    ) -> tuple[Session, int] | None:
        def counted(data: dict[str, Any]) -> dict[str, Any]:
            return {**data, **patch, key: bump(data.get(key))}

        session = await self.local.write(lambda conn: self._rewrite(conn, session_id, counted))
        if session is None:
            return None
        return session, int(session.data[key])

    async def destroy(self, session_id: str) -> bool:
        now = utcnow()
        params = {"sid": session_id, "now": now, "after": now - self.grace}
        # its cart goes with it: ON DELETE CASCADE
        found = await self.local.write(
            partial(self.local.first_in, statement=DESTROY_BY_ID, params=params)
        )
        return found is not None

    async def regenerate(self, session_id: str, new: NewId | None = None) -> Session | None:
        live_after = utcnow() - self.grace
        return await self.local.write(
            lambda conn: regenerate_rows(conn, session_id, self.lifetime, live_after, new)
        )
