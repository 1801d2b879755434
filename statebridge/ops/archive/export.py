"""`statebridge export --format phase1`: the rollback path back to Phase 1.

Writes users, products, the live sessions and their carts in the shape of Phase 1's
`mockData.exportData()`, which Phase 1's `importData()` takes as it is. The stores keep a
session under the keyed hash of its id; the id itself is opened from the row's sealed copy
with the session secret (statebridge/db/sessionkeys.py), so the export needs the servers'
STATEBRIDGE_SESSION_SECRET (or _PREVIOUS for a session made before a rotation). A session
whose id cannot be opened (no sealed copy, or another secret's) is left out and counted.
Everything is read in one snapshot (REPEATABLE READ on PostgreSQL) and streamed out record
by record; the file appears under its name only once it is complete.
"""

from __future__ import annotations

import gzip
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson
import sqlalchemy as sa
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from statebridge.catalog.repository import product_record, user_record
from statebridge.config import Settings
from statebridge.db.sessionkeys import SessionKeys, session_keys
from statebridge.db.tables import counters, products, sessions, shopping_carts, users
from statebridge.ops.archive import live
from statebridge.ops.migrate.database import MigrateError, open_engine, require_schema
from statebridge.ops.migrate.progress import Advance, Bars
from statebridge.stores.carts.base import CartItem, cart_total
from statebridge.stores.sessions.base import Session
from statebridge.timeutil import js_iso
from statebridge.wording import counted


@dataclass
class ExportReport:
    out: str
    users: int = 0
    products: int = 0
    sessions: int = 0
    sealed_off: int = 0  # live sessions left out: their id could not be opened
    carts: int = 0
    cart_items: int = 0
    request_count: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"exported {counted(self.users, 'user')}, {counted(self.products, 'product')}, "
            f"{counted(self.sessions, 'live session')} and {counted(self.carts, 'cart')} "
            f"({counted(self.cart_items, 'item')}), requestCount "
            f"{self.request_count}, to {self.out} in {self.seconds:.2f} s"
            + (
                f"; left out {counted(self.sealed_off, 'live session')} whose id this "
                "STATEBRIDGE_SESSION_SECRET cannot open"
                if self.sealed_off
                else ""
            )
        )


class JsonWriter:
    """Phase 1's export object, written one record per line."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.first_key = True
        self.count = 0

    def open_array(self, key: str) -> None:
        self.stream.write(b"{\n" if self.first_key else b",\n")
        self.first_key = False
        self.stream.write(b'  "' + key.encode() + b'": [')
        self.count = 0

    def item(self, value: Any) -> None:
        self.stream.write(b"\n    " if self.count == 0 else b",\n    ")
        self.stream.write(orjson.dumps(value))
        self.count += 1

    def close_array(self) -> None:
        self.stream.write(b"\n  ]" if self.count else b"]")

    def scalar(self, key: str, value: Any) -> None:
        self.stream.write(b",\n  " + orjson.dumps(key) + b": " + orjson.dumps(value))

    def end(self) -> None:
        self.stream.write(b"\n}\n")


@contextmanager
def output(out: Path) -> Iterator[IO[bytes]]:
    """Standard output for `-`; otherwise a `.partial` file renamed into place when done."""
    if str(out) == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    partial = out.with_name(out.name + ".partial")
    try:
        with partial.open("wb") as raw:
            if out.suffix == ".gz":
                with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) as zipped:
                    yield zipped  # type: ignore[misc]
            else:
                yield raw
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    except OSError as exc:  # pragma: no cover - reported as one line
        raise MigrateError(f"cannot write {out}: {exc.strerror}") from None


def session_record(session: Session) -> dict[str, Any]:
    """Phase 1's session object, its keys in Phase 1's order."""
    return {
        "id": session.id,
        "userId": session.user_id,
        "createdAt": js_iso(session.created_at),
        "lastAccessed": js_iso(session.last_accessed),
        "data": session.data,
        "expiresAt": js_iso(session.expires_at),
    }


def cart_record(session_id: str, items: list[CartItem]) -> dict[str, Any]:
    """Phase 1's cart: item copies of name and price, created/updated times, the total."""
    return {
        "sessionId": session_id,
        "items": [item.view() for item in items],
        "createdAt": js_iso(min(item.added_at for item in items)),
        "updatedAt": js_iso(max(item.updated_at for item in items)),
        "total": cart_total(items),
    }


@dataclass
class Source:
    """What the export and the backup read: one consistent view of the database, and the
    servers' Redis (live sessions' times, counters) when they keep sessions there."""

    conn: AsyncConnection
    redis: Redis | None
    overlay: live.RedisOverlay | None
    grace: timedelta  # how far the table's session expiries may lag Redis's


@asynccontextmanager
async def read_source(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Source]:
    """Redis reached first (one line when it is configured and down), then the migrated
    schema required and one snapshot taken; rolled back and closed at the end."""
    redis = live.connect(settings)
    try:
        overlay = live.overlay(settings, redis)
        if overlay is not None:
            await overlay.start()
        grace = timedelta(seconds=settings.session_db_refresh) if redis else timedelta(0)
        await require_schema(engine, settings, may_upgrade=False)
        async with engine.connect() as plain:
            conn = await snapshot(plain)
            yield Source(conn, redis, overlay, grace)
            await conn.rollback()
    finally:
        if redis is not None:
            await redis.aclose()


async def snapshot(conn: AsyncConnection) -> AsyncConnection:
    """One consistent view of every table for the rest of the transaction."""
    if conn.dialect.name == "postgresql":
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
    await conn.begin()
    return conn


async def count(conn: AsyncConnection, table: sa.Table) -> int:
    return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


async def request_count(conn: AsyncConnection, redis: Redis | None) -> int:
    """requestCount as the servers count it: in Redis when they use it, else the table."""
    if redis is not None:
        value = await redis.get("counter:requestCount")
        if value is not None:
            return int(value)
    query = sa.select(counters.c.value).where(counters.c.name == "requestCount")
    return int((await conn.execute(query)).scalar_one_or_none() or 0)


async def export_phase1(
    settings: Settings, out: Path, now: datetime, bars: Bars | None = None
) -> ExportReport:
    bars = bars or Bars(enabled=False)
    started = time.perf_counter()
    report = ExportReport(str(out))
    async with open_engine(settings) as engine, read_source(settings, engine) as source:
        try:  # once the database is found: no secret is made beside a missing one
            keys = session_keys(settings)
        except ValueError as exc:
            raise MigrateError(str(exc)) from None
        with output(out) as stream:
            writer = JsonWriter(stream)
            await write_all(writer, source, now, report, bars, keys)
            writer.scalar("exportedAt", js_iso(now))
            writer.end()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


async def write_all(
    writer: JsonWriter,
    source: Source,
    now: datetime,
    report: ExportReport,
    bars: Bars,
    keys: SessionKeys,
) -> None:
    conn = source.conn
    for key, table, record in (
        ("users", users, user_record),
        ("products", products, product_record),
    ):
        advance = bars.counter(f"exporting {key}", await count(conn, table))
        writer.open_array(key)
        result = await conn.stream(sa.select(table).order_by(table.c.id))
        async for rows in result.partitions(1000):
            for row in rows:
                writer.item(record(row))
            advance(len(rows))
        writer.close_array()
        setattr(report, key, writer.count)
    exported: dict[str, str] = {}  # the key a session is kept under -> its id
    writer.open_array("sessions")
    advance = bars.counter("exporting live sessions", None)
    async for batch in live.session_batches(conn, source.overlay, source.grace, now):
        for session in batch:
            session_id = keys.open(session.sealed, session.id)
            if session_id is None:
                report.sealed_off += 1
                continue
            exported[session.id] = session.id = session_id
            writer.item(session_record(session))
        advance(len(batch))
    writer.close_array()
    report.sessions = len(exported)
    writer.open_array("carts")
    await write_carts(conn, writer, exported, report, bars.counter("exporting carts", None))
    writer.close_array()
    report.request_count = await request_count(conn, source.redis)
    writer.scalar("requestCount", report.request_count)


CART_ITEMS = (
    sa.select(
        shopping_carts.c.session_id,
        shopping_carts.c.product_id,
        products.c.name,
        products.c.price,
        shopping_carts.c.quantity,
        shopping_carts.c.created_at,
        shopping_carts.c.updated_at,
    )
    .join(products, products.c.id == shopping_carts.c.product_id)
    .join(sessions, sessions.c.id == shopping_carts.c.session_id)
    .order_by(sessions.c.created_at, sessions.c.id, shopping_carts.c.id)
)


async def write_carts(
    conn: AsyncConnection,
    writer: JsonWriter,
    exported: dict[str, str],
    report: ExportReport,
    advance: Advance,
) -> None:
    """One cart per exported session that has items, grouped from rows in session order."""
    current: str | None = None
    items: list[CartItem] = []

    def flush() -> None:
        if current is not None and items:
            writer.item(cart_record(exported[current], items))
            report.carts += 1
            report.cart_items += len(items)
            advance(1)

    result = await conn.stream(CART_ITEMS.execution_options(yield_per=1000))
    async for rows in result.partitions(1000):
        for row in rows:
            if row.session_id not in exported:
                continue
            if row.session_id != current:
                flush()
                current, items = row.session_id, []
            items.append(CartItem(*row[1:]))
    flush()
