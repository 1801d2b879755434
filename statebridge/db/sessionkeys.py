"""Session ids at rest: what the stores keep in place of the id a client holds.

A store keys a session by `key(id)`: the HMAC-SHA256 of the id, cut to its first 128 bits
(32 hex digits, shorter than the id itself: Redis writes the key into its append-only file
several times per read), under a key derived from STATEBRIDGE_SESSION_SECRET. A dump of
Redis or a backup of the database therefore holds no id a client could send. Beside the
key, the SQL row keeps `sealed_id`: the id encrypted (AES-GCM, under another key derived
from the same secret, bound to the row's key), which only `statebridge export --format
phase1` opens, since Phase 1 needs the ids themselves.

STATEBRIDGE_SESSION_SECRET_PREVIOUS is the secret before a rotation: a session keyed under
it is still found (one more keyed lookup, only after a miss under the current one) and
stays under its old key until it ends, at most STATEBRIDGE_SESSION_MAX_LIFETIME later.

Without STATEBRIDGE_SESSION_SECRET: production refuses to start (config.py); the embedded
SQLite file gets a secret generated on first use into `session-secret` beside it (so its
sessions survive a restart); PostgreSQL in development uses DEVELOPMENT_SECRET.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection

from statebridge.config import DEVELOPMENT_SECRET as DEVELOPMENT_SECRET
from statebridge.config import SECRET_NEEDED, Settings
from statebridge.db.engine import sqlite_path

SECRET_FILE = "session-secret"
NONCE = 12
KEY_DIGITS = 32  # 128 bits of the HMAC


def derived(secret: str, purpose: bytes) -> bytes:
    return hmac.new(secret.encode(), b"statebridge session " + purpose, hashlib.sha256).digest()


class SessionKeys:
    """Keys and sealed ids under the current secret, and lookups under the previous one."""

    def __init__(self, secret: str, previous: str | None = None) -> None:
        self._keyer = hmac.new(derived(secret, b"key"), digestmod=hashlib.sha256)
        self._previous = (
            hmac.new(derived(previous, b"key"), digestmod=hashlib.sha256) if previous else None
        )
        self._sealer = AESGCM(derived(secret, b"seal"))
        self._openers = [AESGCM(derived(one, b"seal")) for one in (secret, previous) if one]

    @property
    def rotating(self) -> bool:
        return self._previous is not None

    def key(self, session_id: str) -> str:
        """Where the session is kept: HMAC-SHA256 of its id under the current secret."""
        mac = self._keyer.copy()
        mac.update(session_id.encode())
        return mac.hexdigest()[:KEY_DIGITS]

    def previous_key(self, session_id: str) -> str | None:
        """Its key under the previous secret, when one is set."""
        if self._previous is None:
            return None
        mac = self._previous.copy()
        mac.update(session_id.encode())
        return mac.hexdigest()[:KEY_DIGITS]

    def seal(self, session_id: str, key: str) -> str:
        """The id encrypted for the row keyed `key` (a fresh nonce each time)."""
        nonce = secrets.token_bytes(NONCE)
        sealed = self._sealer.encrypt(nonce, session_id.encode(), key.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str | None, key: str) -> str | None:
        """The id sealed for the row keyed `key`, or None (no seal, or another secret's)."""
        if not sealed:
            return None
        try:
            raw = base64.urlsafe_b64decode(sealed.encode())
        except ValueError:
            return None
        for opener in self._openers:
            try:
                return opener.decrypt(raw[:NONCE], raw[NONCE:], key.encode()).decode()
            except InvalidTag:
                continue
        return None


# the sessions table as revision 0005 leaves it: what `rekey_rows` copies
SESSIONS = sa.table(
    "sessions",
    *(
        sa.column(name)
        for name in (
            "id", "user_id", "data", "created_at", "last_accessed", "expires_at",
            "max_expires_at", "version", "client_address", "user_agent", "sealed_id",
        )
    ),
)  # fmt: skip
CARTS = sa.table("shopping_carts", sa.column("session_id"))


def rekey_rows(conn: Connection, keys: SessionKeys) -> int:
    """Sessions still under their ids (no sealed id) moved to their keys, their ids sealed,
    their carts with them: a copy under the key, the cart lines moved to it, the old row
    deleted, so no foreign key ever points at a missing row. How many were moved."""
    copied = [column for column in SESSIONS.c if column.name not in ("id", "sealed_id")]
    old_ids = [row[0] for row in conn.execute(
        sa.select(SESSIONS.c.id).where(SESSIONS.c.sealed_id.is_(None))
    )]  # fmt: skip
    for old in old_ids:
        key = keys.key(old)
        copy = sa.select(sa.literal(key), sa.literal(keys.seal(old, key)), *copied)
        conn.execute(
            sa.insert(SESSIONS).from_select(
                ["id", "sealed_id", *(column.name for column in copied)],
                copy.where(SESSIONS.c.id == old),
            )
        )
        conn.execute(sa.update(CARTS).where(CARTS.c.session_id == old).values(session_id=key))
        conn.execute(sa.delete(SESSIONS).where(SESSIONS.c.id == old))
    return len(old_ids)


def secret_file(path: Path) -> str:
    """The secret in `path`, made (random, mode 0600) if missing; atomic against another
    process making it at the same moment."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        stream.write(secrets.token_urlsafe(32) + "\n")
    try:
        os.link(draft, path)  # fails if another process made it first: theirs wins
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text().strip()


def session_secret(settings: Settings, database_url: str | None = None) -> str:
    """STATEBRIDGE_SESSION_SECRET; else the secret beside the SQLite file, else (PostgreSQL,
    development only) DEVELOPMENT_SECRET. ValueError in production without one."""
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value()
    if settings.env == "production":
        raise ValueError(SECRET_NEEDED)
    path = sqlite_path(database_url or settings.effective_database_url)
    if path is None:
        return DEVELOPMENT_SECRET
    return secret_file(path.parent / SECRET_FILE)


def session_keys(settings: Settings, database_url: str | None = None) -> SessionKeys:
    """The keys for these settings (and this database, when not the settings' own)."""
    previous = settings.session_secret_previous
    return SessionKeys(
        session_secret(settings, database_url),
        previous.get_secret_value() if previous is not None else None,
    )
