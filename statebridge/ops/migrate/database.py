"""The database side of every migration command: engine, schema check, bulk loading.

Rows are loaded with PostgreSQL's binary COPY (asyncpg's `copy_records_to_table`, on the
same connection and inside the same transaction as the SQLAlchemy statements around it),
or with batched multi-row INSERTs on SQLite.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from itertools import islice
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from statebridge.config import Settings
from statebridge.db import schema
from statebridge.db.engine import create_engine, sqlite_path
from statebridge.wiring.services import StartupError, one_line, prepare_data_dir

BATCH = 2000


class MigrateError(Exception):
    """A refusal or failure worth one clear line, not a traceback."""


@asynccontextmanager
async def open_engine(settings: Settings, create: bool = False) -> AsyncIterator[AsyncEngine]:
    """The engine of the configured database. Commands that only read (export, backup, a
    dry run) pass `create=False`, so a mistyped data directory is an error, not a new file."""
    path = sqlite_path(settings.effective_database_url)
    if path is not None and not create and not path.exists():
        raise MigrateError(
            f"no embedded database at {path} (set DATABASE_URL or STATEBRIDGE_DATA_DIR)"
        )
    try:
        prepare_data_dir(settings)
    except StartupError as exc:
        raise MigrateError(str(exc)) from None
    engine = create_engine(settings.effective_database_url, pool_size=2, pooled=settings.pooled)
    try:
        yield engine
    finally:
        await engine.dispose()


async def revision_of(engine: AsyncEngine) -> str | None:
    try:
        return await schema.current_revision(engine)
    except Exception as exc:
        raise MigrateError(f"cannot reach the database: {one_line(exc)}") from None


async def require_schema(engine: AsyncEngine, settings: Settings, may_upgrade: bool) -> None:
    """The schema must be at head. The embedded file is upgraded (statebridge owns it, as
    `serve` does); an external database is left to `statebridge db upgrade`."""
    current = await revision_of(engine)
    head = schema.head_revision()
    if current == head:
        return
    if may_upgrade and settings.embedded:
        await asyncio.to_thread(schema.upgrade, settings.effective_database_url, "head")
        return
    raise MigrateError(
        f"database schema is at {current or 'nothing'}, this statebridge needs {head}: "
        "run `statebridge db upgrade` first"
    )


def is_postgres(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


def insert(conn: AsyncConnection, table: sa.Table) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT."""
    return (postgresql if is_postgres(conn) else sqlite).insert(table)


def chunks(rows: Iterable[Any], size: int) -> Iterable[list[Any]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def sqlite_value(column: sa.Column[Any]) -> Callable[[Any], Any] | None:
    """How a value is bound for SQLite, the way SQLAlchemy would store it (times in its
    text format, decimals as text that the NUMERIC affinity turns into numbers)."""
    if isinstance(column.type, sa.DateTime):
        return lambda value: None if value is None else f"{value:%Y-%m-%d %H:%M:%S.%f}"
    if isinstance(column.type, sa.Numeric) and not isinstance(column.type, sa.Integer):
        return lambda value: None if value is None else str(value)
    return None


async def load_rows(
    conn: AsyncConnection, table: sa.Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Append `rows` (tuples in `columns` order; JSON columns as JSON text) to `table`,
    streaming: binary COPY on PostgreSQL, batched executemany of plain tuples on SQLite."""
    if is_postgres(conn):
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.copy_records_to_table(table.name, records=rows, columns=list(columns))
        return
    names = ", ".join(f'"{name}"' for name in columns)
    marks = ", ".join("?" for _ in columns)
    statement = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'
    converters = [(index, sqlite_value(table.c[name])) for index, name in enumerate(columns)]
    converting = [(index, convert) for index, convert in converters if convert is not None]
    for batch in chunks(rows, BATCH):
        if converting:
            batch = [list(row) for row in batch]
            for row in batch:
                for index, convert in converting:
                    row[index] = convert(row[index])
        await conn.exec_driver_sql(statement, [tuple(row) for row in batch])


async def create_temporary(conn: AsyncConnection, table: sa.Table) -> None:
    await conn.run_sync(lambda sync: table.drop(sync, checkfirst=True))
    await conn.run_sync(table.create)


async def drop_temporary(conn: AsyncConnection, table: sa.Table) -> None:
    await conn.run_sync(lambda sync: table.drop(sync, checkfirst=True))


async def stream_rows(
    conn: AsyncConnection, query: sa.Select[Any], size: int = 5000
) -> AsyncIterator[Sequence[Any]]:
    """The rows of `query`, read in batches with a server-side cursor; on PostgreSQL straight
    from asyncpg (indexable records, cheaper in CPU than SQLAlchemy's rows for a large read),
    asking for the next batch before handing out this one, so that PostgreSQL produces it
    while the caller works through this one."""
    if is_postgres(conn):
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        cursor = await driver.cursor(str(query.compile(dialect=conn.dialect)))
        pending: asyncio.Future[Any] | None = asyncio.ensure_future(cursor.fetch(size))
        try:
            while pending is not None:
                batch = await pending
                pending = None
                if len(batch) == size:
                    pending = asyncio.ensure_future(cursor.fetch(size))
                    await asyncio.sleep(0)  # the request goes out before the caller's work
                if batch:
                    yield batch
        finally:
            if pending is not None:  # the caller stopped early: finish the request in flight
                await asyncio.gather(pending, return_exceptions=True)
        return
    result = await conn.stream(query.execution_options(yield_per=size))
    async for rows in result.partitions(size):
        yield rows
    await result.close()


@asynccontextmanager
async def dry_run_target(settings: Settings) -> AsyncIterator[tuple[Settings, bool]]:
    """Where a dry run looks: the configured database, or, when the embedded file does not
    exist yet, an empty scratch file (so a first dry run answers instead of creating the
    real one). Yields the settings to use and whether they are the scratch ones."""
    path = sqlite_path(settings.effective_database_url)
    if path is None or path.exists():
        yield settings, False
        return
    with tempfile.TemporaryDirectory(prefix="statebridge-dry-run-") as folder:
        yield with_changes(settings, data_dir=Path(folder)), True


def with_changes(settings: Settings, **update: Any) -> Settings:
    """A copy of `settings` with `update` applied (dropping the cached database URL)."""
    changed = settings.model_copy(update=update)
    changed.__dict__.pop("effective_database_url", None)
    return changed
