"""Sessions in this process's memory only (`STATEBRIDGE_SESSION_BACKEND=memory`).

Exactly Phase 1's weakness, kept on purpose for teaching: a session lives in one process,
so a request that lands on another instance (or after a restart) does not find it. Carts
live beside the sessions, in the same process (statebridge/stores/carts/memory.py), since a
cart row in the database could not point at a session the database does not have.
Production mode refuses this backend (config.py).

Every verb runs without awaiting anything, so each is atomic on the event loop.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from statebridge.stores.sessions.base import Client, Lifetime, NewId, Session, new_session_id
from statebridge.timeutil import utcnow


def bump(value: Any) -> int:
    """The next value of a counter kept in session data (Phase 1: `(n || 0) + 1`)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value + 1
    return 1


class MemorySessionStore:
    def __init__(self, lifetime: Lifetime) -> None:
        self.lifetime = lifetime
        self.sessions: dict[str, Session] = {}
        # session id -> its cart, kept by the memory cart store; dropped with the session
        self.carts: dict[str, Any] = {}
        self.by_user: dict[str, set[str]] = {}  # user id -> the ids of their sessions
        self._expired = 0  # sessions found expired since the last sweep

    def _live(self, session_id: str, now: datetime) -> Session | None:
        session = self.sessions.get(session_id)
        if session is None:
            return None
        hard = session.max_expires_at
        if session.expires_at <= now or (hard is not None and hard <= now):
            self._drop(session_id)
            self._expired += 1
            return None
        return session

    def is_live(self, session_id: str) -> bool:
        return self._live(session_id, utcnow()) is not None

    def _drop(self, session_id: str) -> bool:
        self.carts.pop(session_id, None)
        session = self.sessions.pop(session_id, None)
        if session is None:
            return False
        self._unindex(session)
        return True

    def _index(self, session: Session) -> None:
        self.by_user.setdefault(session.user_id, set()).add(session.id)

    def _unindex(self, session: Session) -> None:
        ids = self.by_user.get(session.user_id)
        if ids is not None:
            ids.discard(session.id)
            if not ids:
                del self.by_user[session.user_id]

    def _touched(self, session: Session, now: datetime) -> Session:
        session.last_accessed = now
        session.expires_at = self.lifetime.next_expiry(now, session.max_expires_at)
        return replace(session, data=dict(session.data))

    async def create(
        self,
        user_id: str,
        data: dict[str, Any],
        client: Client = Client(),
        new: NewId | None = None,
    ) -> Session:
        session = self.lifetime.new_session(user_id, data, client, new)
        self.sessions[session.id] = session
        self._index(session)
        return replace(session, data=dict(session.data))

    async def get(self, session_id: str) -> Session | None:
        now = utcnow()
        session = self._live(session_id, now)
        return None if session is None else self._touched(session, now)

    async def update(self, session_id: str, patch: dict[str, Any]) -> Session | None:
        now = utcnow()
        session = self._live(session_id, now)
        if session is None:
            return None
        session.data = {**session.data, **patch}
        session.version += 1
        return self._touched(session, now)

    async def increment(
        self, session_id: str, key: str, patch: dict[str, Any]
    ) -> tuple[Session, int] | None:
        now = utcnow()
        session = self._live(session_id, now)
        if session is None:
            return None
        value = bump(session.data.get(key))
        session.data = {**session.data, **patch, key: value}
        session.version += 1
        return self._touched(session, now), value

    async def touch(self, session_id: str) -> bool:
        return await self.get(session_id) is not None

    async def destroy(self, session_id: str) -> bool:
        if self._live(session_id, utcnow()) is None:
            return False
        return self._drop(session_id)

    async def regenerate(self, session_id: str, new: NewId | None = None) -> Session | None:
        now = utcnow()
        session = self._live(session_id, now)
        if session is None:
            return None
        del self.sessions[session_id]
        self._unindex(session)
        session.id = new.key if new else new_session_id()
        session.version += 1
        self.sessions[session.id] = session
        self._index(session)
        cart = self.carts.pop(session_id, None)
        if cart is not None:
            self.carts[session.id] = cart
        return self._touched(session, now)

    async def of_user(self, user_id: str) -> list[Session]:
        now = utcnow()
        found = [self._live(session_id, now) for session_id in list(self.by_user.get(user_id, ()))]
        live = [replace(session, data=dict(session.data)) for session in found if session]
        return sorted(live, key=lambda session: (session.created_at, session.id))

    async def revoke(self, session_ids: list[str]) -> list[str]:
        return [session_id for session_id in session_ids if await self.destroy(session_id)]

    async def revoke_all(self) -> int:
        live = await self.count()
        self.sessions.clear()
        self.carts.clear()
        self.by_user.clear()
        return live

    async def users(self) -> int:
        await self.sweep()
        return len(self.by_user)

    async def count(self) -> int:
        now = utcnow()
        return sum(1 for session_id in list(self.sessions) if self._live(session_id, now))

    async def sweep(self) -> int:
        """Drop the expired sessions; how many expired since the last sweep (found here or
        by a read meanwhile)."""
        now = utcnow()
        for session_id in list(self.sessions):
            self._live(session_id, now)
        expired, self._expired = self._expired, 0
        return expired

    async def close(self) -> None:
        self.sessions.clear()
        self.carts.clear()
