"""The session model and the `SessionStore` interface every backend implements."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from statebridge.stores.unavailable import StoreUnavailable as StoreUnavailable
from statebridge.timeutil import js_iso, utcnow

SESSION_ID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def new_session_id() -> str:
    """A UUIDv4 from the operating system's CSPRNG; clients never choose ids."""
    return str(uuid.uuid4())


def id_hint(key: str) -> str:
    """A short name for a session that reveals nothing of its id (the first 12 hex digits of
    the SHA-256 of its stored key, see `Session.key`): what the user's other sessions are
    shown and revoked by, the same whether the session was found by its id or listed."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class UnknownUser(LookupError):
    """The session's user is not in the database (deleted after the catalog was read)."""


@dataclass(frozen=True)
class NewId:
    """What a store keeps a new session under: its key (statebridge/db/sessionkeys.py), and
    the id sealed for the export (None: the store has nowhere to keep it)."""

    key: str
    sealed: str | None = None


@dataclass(frozen=True)
class Client:
    """Where a session was made, as recorded at creation (either may be unknown)."""

    address: str | None = None
    user_agent: str | None = None

    @classmethod
    def of(cls, address: str | None, user_agent: str | None) -> Client:
        return cls(address[:64] if address else None, user_agent[:255] if user_agent else None)


def plausible_id(value: str) -> bool:
    """Only UUID-shaped ids reach a store: no globs, key paths or 10 KB strings."""
    return bool(SESSION_ID.match(value))


@dataclass
class Session:
    id: str
    user_id: str
    data: dict[str, Any]
    created_at: datetime
    last_accessed: datetime
    expires_at: datetime
    max_expires_at: datetime | None = None
    version: int = 0
    client: Client = Client()
    # what the store keeps the session under (the keyed hash of `id`); a store behind
    # KeyedSessionStore knows only this: `id` is then the key too, until that store puts
    # the client's id back, or "" for a session listed rather than found by its id
    key: str = ""
    sealed: str | None = None  # the id sealed for the export, on its way into a new row

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "userId": self.user_id,
            "createdAt": js_iso(self.created_at),
            "lastAccessed": js_iso(self.last_accessed),
            "expiresAt": js_iso(self.expires_at),
            "data": self.data,
        }


@dataclass(frozen=True)
class Lifetime:
    """15 minutes of idle time, sliding, but never past an absolute maximum."""

    idle: timedelta
    maximum: timedelta

    def first_expiry(self, now: datetime) -> tuple[datetime, datetime]:
        hard = now + self.maximum
        return min(now + self.idle, hard), hard

    def new_session(
        self, user_id: str, data: dict[str, Any], client: Client, new: NewId | None = None
    ) -> Session:
        """A session made now, under `new` (its key and sealed id) or a fresh id, with a
        copy of `data`."""
        now = utcnow()
        expires, hard = self.first_expiry(now)
        session_id, sealed = (new.key, new.sealed) if new else (new_session_id(), None)
        session = Session(session_id, user_id, dict(data), now, now, expires, hard, 0, client)
        session.sealed = sealed
        return session

    def next_expiry(self, now: datetime, hard: datetime | None) -> datetime:
        sliding = now + self.idle
        return sliding if hard is None else min(sliding, hard)


class SessionStore(Protocol):
    """Five verbs and a count, as in express-session; every method is atomic.

    The backends key sessions by whatever id they are given; KeyedSessionStore (keyed.py)
    gives them keyed hashes of the client's ids, and passes `new` to `create` and
    `regenerate`: the key the new session is kept under (a new random id when None)."""

    async def create(
        self,
        user_id: str,
        data: dict[str, Any],
        client: Client = Client(),
        new: NewId | None = None,
    ) -> Session: ...

    async def get(self, session_id: str) -> Session | None:
        """The live session, touched (lastAccessed and expiresAt move), or None."""
        ...

    async def update(self, session_id: str, patch: dict[str, Any]) -> Session | None:
        """Merge `patch` into the session data key by key, atomically; touches."""
        ...

    async def increment(
        self, session_id: str, key: str, patch: dict[str, Any]
    ) -> tuple[Session, int] | None:
        """Add 1 to the integer data[key] (missing or not an integer counts as 0) and merge
        `patch`, atomically; returns the session and the new value."""
        ...

    async def touch(self, session_id: str) -> bool: ...

    async def destroy(self, session_id: str) -> bool:
        """End the session; its cart goes with it."""
        ...

    async def regenerate(self, session_id: str, new: NewId | None = None) -> Session | None:
        """The live session under a new id (same user, data, cart, creation and absolute
        end; touched), the old id gone at once, atomically; None when it is not live."""
        ...

    async def count(self) -> int:
        """Live sessions across every instance."""
        ...

    async def of_user(self, user_id: str) -> list[Session]:
        """The user's live sessions, oldest first (found by an index, never a scan); not
        touched."""
        ...

    async def revoke(self, session_ids: list[str]) -> list[str]:
        """End these sessions, by the key they are kept under (`Session.key` of a listed
        one); their carts go with them. The keys that were live."""
        ...

    async def revoke_all(self) -> int:
        """End every session; how many were live."""
        ...

    async def users(self) -> int:
        """How many users have a live session."""
        ...

    async def sweep(self) -> int:
        """Delete expired sessions; returns how many."""
        ...

    async def close(self) -> None: ...
