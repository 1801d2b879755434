"""The parts a running statebridge is made of, built once per process from Settings."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi import Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from statebridge.catalog.cache import CachedCatalog, build_invalidation
from statebridge.catalog.postgres import PostgresCatalog
from statebridge.catalog.replica import ReplicaCatalog
from statebridge.catalog.repository import Catalog, SqlCatalog, seed_if_empty
from statebridge.catalog.sqlite import SqliteCatalog
from statebridge.config import Settings
from statebridge.db import schema
from statebridge.db.engine import create_engine, sqlite_path
from statebridge.db.identity import database_id
from statebridge.db.local import close_local
from statebridge.db.redisclient import connect_redis as connect_redis
from statebridge.db.redisclient import replica_wait_ms
from statebridge.db.sessionkeys import session_keys
from statebridge.errors import StartupError as StartupError
from statebridge.observability.sessions import session_event
from statebridge.stores.carts.base import CartStore
from statebridge.stores.carts.memory import MemoryCartStore
from statebridge.stores.carts.postgres import PostgresCartStore
from statebridge.stores.carts.sqlite import SqliteCartStore
from statebridge.stores.counters.base import Counters
from statebridge.stores.counters.redis import RedisCounters
from statebridge.stores.counters.sql import SqlCounters
from statebridge.stores.counters.sqlite import SqliteCounters
from statebridge.stores.counts import LiveCounts
from statebridge.stores.pgpool import PgPool
from statebridge.stores.sessions.base import Lifetime, SessionStore
from statebridge.stores.sessions.keyed import KeyedSessionStore
from statebridge.stores.sessions.memory import MemorySessionStore
from statebridge.stores.sessions.redis import RedisSessionStore
from statebridge.stores.sessions.sql import sql_store
from statebridge.wording import counted

log = logging.getLogger("statebridge")


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    catalog: Catalog
    sessions: KeyedSessionStore  # the backend, keyed by hashes of the ids (keyed.py)
    carts: CartStore
    counters: Counters
    instance_id: str
    redis: Redis | None = None
    pool: PgPool | None = None  # the PostgreSQL stores' shared asyncpg pool
    read_engine: AsyncEngine | None = None  # the catalog's replica (DATABASE_READ_URL)
    # live sessions as the sweeper last counted them (the SQL backend's gauge: one count per
    # sweep, none per scrape); None before the first count
    live_sessions: int | None = None
    counts: LiveCounts = field(init=False)
    background: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.counts = LiveCounts(self.sessions, self.carts)

    def start_background(self) -> None:
        """Periodic work of a running server: the expired-session sweeper."""
        self.background.append(asyncio.create_task(sweep_forever(self)))

    async def live_gauge(self) -> int | None:
        """Live sessions for /metrics, without a scan per scrape: Redis's live index
        (ZCOUNT), the memory backend's own dict, the SQL backend's last sweep count."""
        if self.settings.effective_session_backend == "sql":
            return self.live_sessions
        return await self.sessions.count()

    async def close(self) -> None:
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        await self.sessions.close()
        await self.carts.close()
        if self.pool is not None:
            await self.pool.close()
        if isinstance(self.catalog, CachedCatalog):
            await self.catalog.close()
        close_local(self.engine)
        await self.engine.dispose()
        if self.read_engine is not None:
            await self.read_engine.dispose()


async def sweep_forever(services: Services) -> None:
    interval = services.settings.sweep_interval
    first = True
    while True:
        if not first:
            await asyncio.sleep(interval)
        try:
            removed = 0 if first else await services.sessions.sweep()
            if removed:
                log.info("swept %s", counted(removed, "expired session"))
                session_event("expired", removed)
            if services.settings.effective_session_backend == "sql":
                services.live_sessions = await services.sessions.count()
        except Exception as exc:  # the sweeper must outlive a database hiccup
            log.warning("session sweep failed: %s", one_line(exc))
        first = False


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
    try:
        current = await schema.current_revision(engine)
    except Exception as exc:
        raise StartupError(f"cannot reach the database: {one_line(exc)}") from None
    head = schema.head_revision()
    if current == head:
        return
    if migrate or settings.embedded:
        try:
            url = settings.schema_url
        except ValueError as exc:
            raise StartupError(str(exc)) from None
        await asyncio.to_thread(schema.upgrade, url, "head")
        return
    raise StartupError(
        f"database schema is at {current or 'nothing'}, this statebridge needs {head}: "
        "run `statebridge db upgrade` (or start with `statebridge serve --migrate`)"
    )


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


def cart_store(
    engine: AsyncEngine, catalog: CachedCatalog, pool: PgPool | None, sessions: SessionStore
) -> CartStore:
    """PostgreSQL's carts run plain asyncpg statements; SQLite's (embedded) SQLAlchemy; the
    memory backend's carts stay in the process beside its sessions."""
    if isinstance(sessions, MemorySessionStore):
        return MemoryCartStore(engine, catalog, sessions.carts, sessions.is_live)
    if pool is not None:
        return PostgresCartStore(engine, catalog, pool)
    return SqliteCartStore(engine, catalog)


async def build_services(settings: Settings, migrate: bool = False) -> Services:
    prepare_data_dir(settings)
    try:
        keys = session_keys(settings)
    except (ValueError, OSError) as exc:
        raise StartupError(f"session secret: {exc}") from None
    engine = create_engine(settings.effective_database_url, pooled=settings.pooled)
    # sessions and carts share one asyncpg pool on PostgreSQL
    pool = PgPool(engine, pooled=settings.pooled) if engine.dialect.name == "postgresql" else None
    redis: Redis | None = None
    try:
        await check_schema(engine, settings, migrate)
        seeded = settings.seed == "auto" and await seed_if_empty(engine)
        lifetime = Lifetime(
            timedelta(seconds=settings.session_ttl),
            timedelta(seconds=settings.session_max_lifetime),
        )
        backend = settings.effective_session_backend
        sql_counters = SqlCounters(engine) if pool is not None else SqliteCounters(engine)
        counters: Counters = sql_counters
        if backend == "sql":
            sessions: SessionStore = sql_store(engine, lifetime, pool=pool)
        elif backend == "redis":
            if not settings.redis_url:
                raise StartupError("the redis session backend needs REDIS_URL")
            redis = connect_redis(settings.redis_url)
            refresh = timedelta(seconds=settings.session_db_refresh)
            store = RedisSessionStore(
                redis,
                sql_store(engine, lifetime, grace=refresh, pool=pool),
                lifetime,
                refresh,
                wait_ms=replica_wait_ms(settings.redis_url),
            )
            await store.adopt_database(await database_id(engine))
            await store.warm()
            sessions = store
            counters = RedisCounters(redis, sql_counters)
        elif backend == "memory":
            sessions = MemorySessionStore(lifetime)
        else:
            raise StartupError(f"session backend {backend!r} is not available")
    except BaseException:
        if redis is not None:
            await redis.aclose()
        if pool is not None:
            await pool.close()
        await engine.dispose()
        raise
    invalidation = build_invalidation(
        settings.effective_database_url, settings.redis_url, listen_url=settings.direct_url
    )
    read_engine, source = catalog_source(settings, engine, pool)
    if seeded and isinstance(source, ReplicaCatalog):
        source.wrote()  # the replica may not have the seed yet
    catalog = CachedCatalog(source, invalidation)
    await catalog.start()
    return Services(
        settings=settings,
        engine=engine,
        catalog=catalog,
        sessions=KeyedSessionStore(sessions, keys, sealed=backend != "memory"),
        carts=cart_store(engine, catalog, pool, sessions),
        counters=counters,
        instance_id=settings.instance_id or default_instance_id(),
        redis=redis,
        pool=pool,
        read_engine=read_engine,
    )


REPLICA_POOL = 5  # the catalog's reads are few: the cache answers most of them
REPLICA_CONNECT_SECONDS = 2.0  # a replica that does not answer soon is skipped


def catalog_source(
    settings: Settings, engine: AsyncEngine, pool: PgPool | None = None
) -> tuple[AsyncEngine | None, Catalog]:
    """The catalog in the database (on PostgreSQL, on the stores' pool); with
    DATABASE_READ_URL, its reads from that replica."""
    if engine.dialect.name == "sqlite":
        return None, SqliteCatalog(engine)
    primary = PostgresCatalog(engine, pool) if pool is not None else SqlCatalog(engine)
    if not settings.read_url:
        return None, primary
    read_engine = create_engine(
        settings.read_url, pool_size=REPLICA_POOL, connect_timeout=REPLICA_CONNECT_SECONDS
    )
    return read_engine, ReplicaCatalog(primary, SqlCatalog(read_engine))


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
