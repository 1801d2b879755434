"""Async engines for SQLite (embedded) and PostgreSQL, tuned for each."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

from statebridge.observability.metrics import METRICS


def json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


IMMEDIATE = "sqlite_immediate"
SINGLE_READ = "sqlite_single_read"  # a connection that runs one SELECT and nothing else


@asynccontextmanager
async def begin_immediate(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction that reads and then writes. On SQLite it starts with BEGIN IMMEDIATE,
    taking the write lock first, so two such transactions serialise instead of one failing
    (or losing an update) when it tries to upgrade its read lock; elsewhere a plain begin."""
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn = await conn.execution_options(**{IMMEDIATE: True})
        async with conn.begin():
            yield conn


def configure_sqlite(engine: Engine, busy_ms: int = 10000) -> None:
    """WAL, a busy timeout, foreign keys, and explicit BEGINs (IMMEDIATE when asked)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get(SINGLE_READ, False):
            return  # one SELECT: its own implicit transaction, no BEGIN/ROLLBACK around it
        connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get(IMMEDIATE, False) else "BEGIN")


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def pooler_connect_args() -> dict[str, Any]:
    """asyncpg behind a transaction pooler (PgBouncer): a server connection is ours for one
    transaction only, so no prepared statement may be kept for later (asyncpg's and
    SQLAlchemy's caches off), and the ones made inside a transaction get names no other
    client's statement on that server connection can have (SQLAlchemy's "Using a pgbouncer")."""
    return {
        "statement_cache_size": 0,
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": unique_statement_name,
    }


def unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"


def create_engine(
    url: str, pool_size: int = 10, pooled: bool = False, connect_timeout: float | None = None
) -> AsyncEngine:
    """`pooled`: `url` is a transaction pooler (STATEBRIDGE_DATABASE_POOLER=transaction);
    `connect_timeout`: seconds a new PostgreSQL connection may take (asyncpg's 60 else)."""
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url,
            json_serializer=json_dumps,
            json_deserializer=orjson.loads,
            pool_size=pool_size,
            max_overflow=0,  # kept, not opened and closed again per burst
            pool_timeout=30,
        )
        configure_sqlite(engine.sync_engine)
        _count_connections(engine)
        return engine
    engine = create_async_engine(
        url,
        json_serializer=json_dumps,
        json_deserializer=orjson.loads,
        pool_size=pool_size,
        # no overflow: connections opened past the pool under load were closed again as soon
        # as they were returned, a new PostgreSQL backend per burst; callers wait instead
        max_overflow=0,
        pool_timeout=30,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={
            **(pooler_connect_args() if pooled else {}),
            **({"timeout": connect_timeout} if connect_timeout else {}),
        },
    )
    _count_connections(engine)
    return engine


def pool_usage(engine: AsyncEngine) -> tuple[int, int]:
    """(connections checked out now, the most the pool holds: no overflow, see above)."""
    pool = engine.sync_engine.pool
    if isinstance(pool, QueuePool):
        return pool.checkedout(), pool.size()
    return 0, 0


def _count_connections(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(_dbapi_connection: Any, _record: Any) -> None:
        METRICS.connection_opened("sqlalchemy")
