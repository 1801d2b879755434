"""`statebridge backup`: a consistent logical backup of every table, as JSON lines.

The file (gzip-compressed when its name ends in `.gz`) is a header line, then for each
table a line naming its columns (and the rows expected, a hint for progress), one JSON
array per row, and a closing line with the row count and a checksum; then the server-wide
counters Redis holds, and an end line, so a truncated file is noticed. All tables are read
in one snapshot (REPEATABLE READ on PostgreSQL). Sessions are the live ones only, by the
servers' rule (as `export` reads them), and carts those of the sessions written: an
expired session the sweeper has not deleted yet is not restored. With Redis in front, each
session's lastAccessed/expiresAt come from Redis when it has them, since the table's copy
may lag. Any database restores any backup: values are written in portable forms (ISO
times, decimal strings, JSON). Once the file is complete, the database records the time
(`statebridge_meta.last_backup_at`, exposed by `/metrics` for the backup alert).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from hashlib import blake2b
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection

from statebridge.config import Settings
from statebridge.db import schema
from statebridge.db.backups import record_backup
from statebridge.db.tables import counters, products, sessions, shopping_carts, users
from statebridge.ops.archive import live
from statebridge.ops.archive.export import count, output, read_source
from statebridge.ops.migrate.database import open_engine
from statebridge.ops.migrate.progress import Bars
from statebridge.ops.migrate.records import MASK
from statebridge.timeutil import utcnow

FORMAT = "statebridge-backup"
VERSION = 1
TABLES = (users, products, sessions, shopping_carts, counters)  # parents before children


def checksum_of(values: list[Any]) -> int:
    encoded = orjson.dumps(values, option=orjson.OPT_SORT_KEYS)
    return int.from_bytes(blake2b(encoded, digest_size=8).digest(), "little")


def encoder(column: sa.Column[Any]) -> Callable[[Any], Any]:
    """A column value in a portable JSON form."""
    if isinstance(column.type, sa.DateTime):
        return lambda value: None if value is None else value.isoformat()
    if isinstance(column.type, sa.Numeric) and not isinstance(column.type, sa.Integer):
        return lambda value: None if value is None else str(value)
    return lambda value: value


def decoder(column: sa.Column[Any]) -> Callable[[Any], Any]:
    """The inverse of `encoder`, in the forms `load_rows` takes (JSON as text)."""
    if isinstance(column.type, sa.DateTime):
        return lambda value: None if value is None else datetime.fromisoformat(value)
    if isinstance(column.type, sa.Numeric) and not isinstance(column.type, sa.Integer):
        return lambda value: None if value is None else Decimal(value)
    if isinstance(column.type, sa.JSON):
        return lambda value: None if value is None else orjson.dumps(value).decode()
    return lambda value: value


def encode_row(encoders: list[Callable[[Any], Any]], row: Any) -> list[Any]:
    return [encode(value) for encode, value in zip(encoders, row, strict=True)]


@dataclass
class TableSummary:
    table: str
    rows: int = 0
    checksum: int = 0

    def end_line(self) -> dict[str, Any]:
        return {"end": self.table, "rows": self.rows, "checksum": f"{self.checksum & MASK:016x}"}


@dataclass
class BackupReport:
    out: str
    tables: list[TableSummary] = field(default_factory=list)
    redis_counters: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        parts = ", ".join(f"{t.table} {t.rows}" for t in self.tables)
        return f"backed up {parts} to {self.out} in {self.seconds:.2f} s"


async def table_checksum(
    conn: AsyncConnection, table: sa.Table, names: list[str] | None = None
) -> TableSummary:
    """Rows and checksum of a table as it is now (what a restore must reproduce), over
    `names` (a backup's columns) or all of its columns."""
    summary = TableSummary(table.name)
    columns = [table.c[name] for name in names] if names else list(table.c)
    encoders = [encoder(column) for column in columns]
    query = sa.select(*columns).execution_options(yield_per=1000)
    result = await conn.stream(query)
    async for rows in result.partitions(1000):
        for row in rows:
            summary.rows += 1
            summary.checksum += checksum_of(encode_row(encoders, row))
    return summary


async def redis_counters(redis: Redis) -> dict[str, int]:
    found: dict[str, int] = {}
    async for key in redis.scan_iter(match="counter:*", count=1000):
        value = await redis.get(key)
        name = key.decode() if isinstance(key, bytes) else str(key)
        if value is not None:
            found[name.removeprefix("counter:")] = int(value)
    return found


@dataclass
class LiveSessions:
    """Which sessions a backup writes: those live at `now`, as the servers would see them."""

    overlay: live.RedisOverlay | None
    grace: timedelta  # how far the table's expiresAt may lag Redis's
    now: datetime
    written: set[str] = field(default_factory=set)  # their carts go in, no other

    def where(self) -> sa.ColumnElement[bool]:
        """The table's side of the rule, to count ahead (Redis may still end some)."""
        return sa.and_(
            sessions.c.expires_at > self.now - self.grace,
            sa.or_(sessions.c.max_expires_at.is_(None), sessions.c.max_expires_at > self.now),
        )

    async def expected(self, conn: AsyncConnection, table: sa.Table) -> int:
        """At most this many rows of `table` go in: a hint for the progress bars."""
        if table is sessions:
            query = sa.select(sa.func.count()).select_from(sessions).where(self.where())
        elif table is shopping_carts:
            joined = shopping_carts.join(sessions, sessions.c.id == shopping_carts.c.session_id)
            query = sa.select(sa.func.count()).select_from(joined).where(self.where())
        else:
            return await count(conn, table)
        return int((await conn.execute(query)).scalar_one())


async def backup(
    settings: Settings, out: Path, bars: Bars | None = None, now: datetime | None = None
) -> BackupReport:
    """Back up every table into `out`; sessions (and carts) live at `now` (default: now)."""
    bars = bars or Bars(enabled=False)
    started = time.perf_counter()
    report = BackupReport(str(out))
    async with open_engine(settings) as engine:
        async with read_source(settings, engine) as source:
            conn, redis = source.conn, source.redis
            alive = LiveSessions(source.overlay, source.grace, now or utcnow())
            with output(out) as stream:

                def line(value: Any) -> None:
                    stream.write(orjson.dumps(value) + b"\n")

                line(
                    {
                        "format": FORMAT,
                        "version": VERSION,
                        "revision": schema.head_revision(),
                        "createdAt": utcnow().isoformat(),
                        "database": engine.dialect.name,
                    }
                )
                for table in TABLES:
                    total = await alive.expected(conn, table)
                    advance = bars.counter(f"backing up {table.name}", total)
                    line({"table": table.name, "columns": list(table.c.keys()), "rows": total})
                    summary = TableSummary(table.name)
                    async for row in table_rows(conn, table, alive):
                        line(row)
                        summary.rows += 1
                        summary.checksum += checksum_of(row)
                        if summary.rows % 1000 == 0:
                            advance(1000)
                    line(summary.end_line())
                    report.tables.append(summary)
                if redis is not None:
                    report.redis_counters = await redis_counters(redis)
                line({"redis_counters": report.redis_counters})
                line({"end_of_backup": True, "tables": len(TABLES)})
        async with engine.begin() as recording:
            await record_backup(recording, time.time())
    report.seconds = round(time.perf_counter() - started, 3)
    return report


async def table_rows(
    conn: AsyncConnection, table: sa.Table, alive: LiveSessions
) -> AsyncIterator[list[Any]]:
    """Encoded rows; the live sessions only, with Redis's fresher times, and their carts."""
    encoders = [encoder(column) for column in table.c]
    if table is sessions:
        names = list(table.c.keys())
        batches = live.session_batches(conn, alive.overlay, alive.grace, alive.now, by_id=True)
        async for batch in batches:
            for session in batch:
                alive.written.add(session.id)
                values = {
                    "id": session.id,
                    "user_id": session.user_id,
                    "data": session.data,
                    "created_at": session.created_at,
                    "last_accessed": session.last_accessed,
                    "expires_at": session.expires_at,
                    "max_expires_at": session.max_expires_at,
                    "version": session.version,
                    "client_address": session.client.address,
                    "user_agent": session.client.user_agent,
                    "sealed_id": session.sealed,
                }
                yield encode_row(encoders, [values[name] for name in names])
        return
    order = list(table.primary_key.columns)
    result = await conn.stream(sa.select(table).order_by(*order).execution_options(yield_per=1000))
    carts = table is shopping_carts
    async for rows in result.partitions(1000):
        for row in rows:
            if carts and row.session_id not in alive.written:
                continue
            yield encode_row(encoders, row)
