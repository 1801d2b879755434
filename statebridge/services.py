"""The parts a running statebridge is made of, built once per process from Settings."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine

from statebridge.carts.repository import CartRepository
from statebridge.catalog.repository import Catalog, SqlCatalog, seed_if_empty
from statebridge.config import Settings
from statebridge.counters import Counters, SqlCounters
from statebridge.db import schema
from statebridge.db.engine import create_engine, sqlite_path
from statebridge.sessions.sql import SqlSessionStore
from statebridge.sessions.store import Lifetime, SessionStore


class StartupError(Exception):
    """A configuration problem worth one clear line, not a traceback."""


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    catalog: Catalog
    sessions: SessionStore
    carts: CartRepository
    counters: Counters
    instance_id: str
    extras: dict[str, Any] = field(default_factory=dict)

    async def close(self) -> None:
        await self.sessions.close()
        await self.engine.dispose()


def default_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def prepare_data_dir(settings: Settings) -> None:
    path = sqlite_path(settings.effective_database_url)
    if path is None:
        return
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StartupError(f"data directory {directory} is not writable: {exc.strerror}") from None


async def check_schema(engine: AsyncEngine, settings: Settings, migrate: bool) -> None:
    """Migrate when allowed (always for the embedded file); otherwise refuse a stale schema."""
    url = settings.effective_database_url
    try:
        current = await schema.current_revision(engine)
    except Exception as exc:
        raise StartupError(f"cannot reach the database: {one_line(exc)}") from None
    head = schema.head_revision()
    if current == head:
        return
    if migrate or settings.embedded:
        import asyncio

        await asyncio.to_thread(schema.upgrade, url, "head")
        return
    raise StartupError(
        f"database schema is at {current or 'nothing'}, this statebridge needs {head}: "
        "run `statebridge db upgrade` (or start with `statebridge serve --migrate`)"
    )


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


async def build_services(settings: Settings, migrate: bool = False) -> Services:
    prepare_data_dir(settings)
    engine = create_engine(settings.effective_database_url)
    try:
        await check_schema(engine, settings, migrate)
        if settings.seed == "auto":
            await seed_if_empty(engine)
        lifetime = Lifetime(
            timedelta(seconds=settings.session_ttl),
            timedelta(seconds=settings.session_max_lifetime),
        )
        sessions = await build_session_store(settings, engine, lifetime)
    except BaseException:
        await engine.dispose()
        raise
    return Services(
        settings=settings,
        engine=engine,
        catalog=SqlCatalog(engine),
        sessions=sessions,
        carts=CartRepository(engine),
        counters=SqlCounters(engine),
        instance_id=settings.instance_id or default_instance_id(),
    )


async def build_session_store(
    settings: Settings, engine: AsyncEngine, lifetime: Lifetime
) -> SessionStore:
    backend = settings.effective_session_backend
    if backend == "sql":
        return SqlSessionStore(engine, lifetime)
    raise StartupError(f"session backend {backend!r} is not available in this build")


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
