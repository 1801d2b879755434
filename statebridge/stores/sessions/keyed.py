"""The session store the app uses: any backend, keyed by hashes of the ids clients hold.

A client's session id never reaches a backend: each verb looks the session up by `key(id)`
(statebridge/db/sessionkeys.py), and a new session is made under the key of a new random
id, with the id itself sealed beside it for the export. The sessions it returns carry the
client's id in `id` and the stored key in `key` (carts are kept by the key); a listed
session (`of_user`) has only its key, and is revoked by it.

During a rotation (STATEBRIDGE_SESSION_SECRET_PREVIOUS set) a session the current key does
not find is looked up once more under the previous secret's key, and stays there until it
ends: at most one extra keyed lookup, and only for a session made before the rotation (or an
unknown id).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from statebridge.db.sessionkeys import SessionKeys
from statebridge.stores.sessions.base import Client, NewId, Session, SessionStore, new_session_id

Found = TypeVar("Found")


class KeyedSessionStore:
    def __init__(self, inner: SessionStore, keys: SessionKeys, sealed: bool = True) -> None:
        self.inner = inner
        self.keys = keys
        self.sealed = sealed  # False: the backend keeps nothing for an export (memory)

    def key_of(self, session_id: str) -> str:
        """Where the session with this id is kept (under the current secret)."""
        return self.keys.key(session_id)

    def _new(self) -> tuple[str, NewId]:
        session_id = new_session_id()
        key = self.keys.key(session_id)
        return session_id, NewId(key, self.keys.seal(session_id, key) if self.sealed else None)

    @staticmethod
    def _shown(session: Session, session_id: str) -> Session:
        """A copy: the backend may still use its own (the Redis store's background expiry
        refresh reads its id after the answer)."""
        return replace(session, id=session_id, key=session.id, sealed=None)

    async def _either(
        self, session_id: str, verb: Callable[[str], Awaitable[Found]]
    ) -> tuple[Found, str]:
        """`verb` on the current key; when it finds nothing and a previous secret is set,
        on the previous key: the answer, and the key it came from."""
        key = self.keys.key(session_id)
        found = await verb(key)
        if not found:
            previous = self.keys.previous_key(session_id)
            if previous is not None:
                return await verb(previous), previous
        return found, key

    async def create(
        self,
        user_id: str,
        data: dict[str, Any],
        client: Client = Client(),
        new: NewId | None = None,
    ) -> Session:
        session_id, made = self._new()
        return self._shown(await self.inner.create(user_id, data, client, made), session_id)

    async def get(self, session_id: str) -> Session | None:
        session, _ = await self._either(session_id, self.inner.get)
        return None if session is None else self._shown(session, session_id)

    async def update(self, session_id: str, patch: dict[str, Any]) -> Session | None:
        session, _ = await self._either(session_id, lambda key: self.inner.update(key, patch))
        return None if session is None else self._shown(session, session_id)

    async def increment(
        self, session_id: str, key: str, patch: dict[str, Any]
    ) -> tuple[Session, int] | None:
        found, _ = await self._either(
            session_id, lambda stored: self.inner.increment(stored, key, patch)
        )
        if found is None:
            return None
        session, value = found
        return self._shown(session, session_id), value

    async def touch(self, session_id: str) -> bool:
        touched, _ = await self._either(session_id, self.inner.touch)
        return touched

    async def destroy(self, session_id: str) -> bool:
        destroyed, _ = await self._either(session_id, self.inner.destroy)
        return destroyed

    async def regenerate(self, session_id: str, new: NewId | None = None) -> Session | None:
        """The new id is keyed under the current secret, wherever the old one was."""
        renewed_id, made = self._new()
        session, _ = await self._either(session_id, lambda key: self.inner.regenerate(key, made))
        return None if session is None else self._shown(session, renewed_id)

    async def of_user(self, user_id: str) -> list[Session]:
        return [self._shown(session, "") for session in await self.inner.of_user(user_id)]

    async def revoke(self, session_ids: list[str]) -> list[str]:
        return await self.inner.revoke(session_ids)

    async def revoke_all(self) -> int:
        return await self.inner.revoke_all()

    async def users(self) -> int:
        return await self.inner.users()

    async def count(self) -> int:
        return await self.inner.count()

    async def sweep(self) -> int:
        return await self.inner.sweep()

    async def close(self) -> None:
        await self.inner.close()
