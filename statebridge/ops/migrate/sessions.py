"""`statebridge migrate sessions`: Phase 1's live sessions, and their carts, into Phase 2.

Phase 1 kept sessions in a Map and exported them in two shapes: the transition guide's
`phase1-sessions.json` (an object keyed by session id) and `exportData()` (a `sessions`
array beside a `carts` array keyed by `sessionId`). Both are streamed. Each session's
remaining lifetime is computed from `expiresAt` against the clock (`--now` fixes it);
expired sessions are counted and skipped, live ones are written to the `sessions` table
(and their carts to `shopping_carts`) and, when the servers keep sessions in Redis, into
Redis too, so that their first reads find them there (a miss would be read from the table).

Only sessions this run inserts get carts and Redis entries, so a second run changes
nothing: a session already present may have moved on since the first run. Sessions are
stored as the servers store them, under the keyed hash of their id with the id sealed beside
it (statebridge/db/sessionkeys.py): the client's Phase 1 id keeps working.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from statebridge.config import Settings
from statebridge.db.sessionkeys import SessionKeys, session_keys
from statebridge.db.tables import products, sessions, shopping_carts, users
from statebridge.ops.migrate import sources
from statebridge.ops.migrate.database import (
    MigrateError,
    chunks,
    dry_run_target,
    insert,
    open_engine,
    require_schema,
)
from statebridge.ops.migrate.progress import Bars
from statebridge.ops.migrate.records import timestamp
from statebridge.ops.migrate.report import Problems
from statebridge.stores.sessions.base import Lifetime, Session, plausible_id
from statebridge.timeutil import js_iso

BATCH = 1000
MAX_QUANTITY = 2**31 - 1
EXPIRED = "expired"


@dataclass
class SessionReport:
    database: str
    redis: str
    form: str
    now: str
    dry_run: bool
    read: int = 0
    imported: int = 0
    already_present: int = 0
    expired: int = 0
    missing_user: int = 0
    invalid: int = 0
    shortest_ttl_seconds: float | None = None
    longest_ttl_seconds: float | None = None
    carts_read: int = 0
    carts_skipped: int = 0  # their session was not imported by this run
    cart_items_imported: int = 0
    cart_items_refused: int = 0
    cart_items_repriced: int = 0  # Phase 1 copied the price; Phase 2 carts show the catalog's
    cached_in_redis: int = 0
    problems: Problems = field(default_factory=Problems)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return True

    def lived(self, ttl: float) -> None:
        if self.shortest_ttl_seconds is None or ttl < self.shortest_ttl_seconds:
            self.shortest_ttl_seconds = ttl
        if self.longest_ttl_seconds is None or ttl > self.longest_ttl_seconds:
            self.longest_ttl_seconds = ttl


def check_session(key: str | None, record: Any, now: datetime, maximum: timedelta) -> Session | str:
    """A Phase 2 session from a Phase 1 one (camelCase in, snake_case out), `EXPIRED`, or
    the reason it is refused. `key` is the object key of the guide's form."""
    if type(record) is not dict:
        return "not a JSON object"
    session_id = record.get("id", key)
    if key is not None and session_id != key:
        return f"id {str(session_id)[:40]!r} differs from its key"
    if type(session_id) is not str or not plausible_id(session_id):
        return "id is not a UUID"
    user_id = record.get("userId")
    if type(user_id) is not str or not user_id or len(user_id) > 50:
        return "userId is missing or not a user id"
    created = timestamp(record, "createdAt")
    expires = timestamp(record, "expiresAt")
    last = timestamp(record, "lastAccessed")
    for name, value in (("createdAt", created), ("expiresAt", expires)):
        if value is None:
            return f"{name} is missing"
        if isinstance(value, str):
            return value
    if isinstance(last, str):
        return last
    assert isinstance(created, datetime) and isinstance(expires, datetime)
    data = record.get("data")
    if data is None:
        data = {}
    if type(data) is not dict:
        return "data must be an object"
    try:
        orjson.dumps(data)
    except TypeError as exc:
        return f"data cannot be stored as JSON: {exc}"
    hard = created + maximum
    expires = min(expires, hard)
    if expires <= now:
        return EXPIRED
    return Session(session_id, user_id, data, created, last or created, expires, hard, 1)


def session_pairs(path: Path, export: bool, bars: Bars) -> Iterator[tuple[str, Any, Any]]:
    """(where, key, record) for each session of either form."""
    advance = bars.counter(f"reading sessions from {path.name}", sources.file_size(path), "bytes")
    if export:
        for pos, record in enumerate(sources.iter_items(path, "sessions.item", advance)):
            yield f"sessions[{pos}]", None, record
    else:
        for key, record in sources.iter_pairs(path, "", advance):
            yield f"session {key}", key, record


async def existing(engine: AsyncEngine, column: sa.Column[Any], values: set[str]) -> set[str]:
    if not values:
        return set()
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(column).where(column.in_(sorted(values))))
        return {row[0] for row in rows}


class RedisTarget:
    """The servers' Redis session store, when they keep sessions there."""

    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        from statebridge.stores.sessions.redis import RedisSessionStore
        from statebridge.stores.sessions.sql import sql_store
        from statebridge.wiring.services import connect_redis

        lifetime = Lifetime(
            timedelta(seconds=settings.session_ttl),
            timedelta(seconds=settings.session_max_lifetime),
        )
        refresh = timedelta(seconds=settings.session_db_refresh)
        self.redis = connect_redis(settings.redis_url)
        self.store = RedisSessionStore(self.redis, sql_store(engine, lifetime), lifetime, refresh)

    async def check(self) -> None:
        from redis.exceptions import RedisError

        try:
            await self.redis.ping()
        except RedisError as exc:
            await self.redis.aclose()
            raise MigrateError(f"cannot reach Redis at REDIS_URL: {exc}") from None

    async def close(self) -> None:
        await self.redis.aclose()


def redis_wanted(settings: Settings) -> bool:
    return bool(settings.redis_url) and settings.effective_session_backend == "redis"


async def migrate_sessions(
    settings: Settings, path: Path, now: datetime, dry_run: bool = False, bars: Bars | None = None
) -> SessionReport:
    bars = bars or Bars(enabled=False)
    started = time.perf_counter()
    export = sources.is_phase1_export(path)
    if dry_run:
        async with dry_run_target(settings) as (target, scratch):
            report = await import_into(target, path, export, now, True, bars, create=scratch)
    else:
        report = await import_into(settings, path, export, now, False, bars, create=True)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


async def import_into(
    settings: Settings,
    path: Path,
    export: bool,
    now: datetime,
    dry_run: bool,
    bars: Bars,
    create: bool,
) -> SessionReport:
    async with open_engine(settings, create=create) as engine:
        await require_schema(engine, settings, may_upgrade=create)
        redis: RedisTarget | None = None
        if redis_wanted(settings):
            redis = RedisTarget(settings, engine)
            await redis.check()
        where = "Redis and the sessions table" if redis else "the sessions table (no REDIS_URL)"
        report = SessionReport(
            engine.dialect.name,
            where,
            "exportData()" if export else "phase1-sessions.json",
            js_iso(now),
            dry_run,
        )
        try:
            imported = await import_sessions(
                settings, engine, path, export, now, report, redis, bars
            )
            if export:
                await import_carts(engine, path, imported, report, bars)
        finally:
            if redis is not None:
                await redis.close()
    return report


async def import_sessions(
    settings: Settings,
    engine: AsyncEngine,
    path: Path,
    export: bool,
    now: datetime,
    report: SessionReport,
    redis: RedisTarget | None,
    bars: Bars,
) -> dict[str, str]:
    """Insert the live sessions whose user exists, each under the keyed hash of its id (the
    client's id keeps working); returns the ids this run inserted, with their keys."""
    maximum = timedelta(seconds=settings.session_max_lifetime)
    keys = session_keys(settings)
    seen: set[str] = set()
    imported: dict[str, str] = {}
    for batch in chunks(session_pairs(path, export, bars), BATCH):
        live: list[tuple[str, Session]] = []
        for where, key, record in batch:
            report.read += 1
            result = check_session(key, record, now, maximum)
            if result == EXPIRED:
                report.expired += 1
            elif isinstance(result, str):
                report.invalid += 1
                report.problems.add(where, result, key or record_id(record))
            elif result.id in seen:
                report.invalid += 1
                report.problems.add(where, "duplicate session id", result.id)
            else:
                seen.add(result.id)
                live.append((where, result))
        known_users = await existing(engine, users.c.id, {s.user_id for _, s in live})
        live = [(where, stored(keys, session)) for where, session in live]
        present = await existing(engine, sessions.c.id, {s.key for _, s in live})
        fresh: list[Session] = []
        for where, session in live:
            if session.user_id not in known_users:
                report.missing_user += 1
                report.problems.add(where, f"user {session.user_id} does not exist", session.id)
            elif session.key in present:
                report.already_present += 1
            else:
                fresh.append(session)
                report.lived((session.expires_at - now).total_seconds())
        report.imported += len(fresh)
        imported.update((session.id, session.key) for session in fresh)
        fresh = [as_kept(session) for session in fresh]
        if fresh and not report.dry_run:
            await write_sessions(engine, fresh)
            if redis is not None:
                report.cached_in_redis += await redis.store.cache_many(fresh)
    return imported


def stored(keys: SessionKeys, session: Session) -> Session:
    """The Phase 1 session with the key it is kept under, and its id sealed."""
    session.key = keys.key(session.id)
    session.sealed = keys.seal(session.id, session.key)
    return session


def as_kept(session: Session) -> Session:
    """The session as the stores keep it: by its key."""
    return replace(session, id=session.key)


def record_id(record: Any) -> Any:
    return record.get("id") if isinstance(record, dict) else None


async def write_sessions(engine: AsyncEngine, fresh: list[Session]) -> None:
    async with engine.begin() as conn:
        statement = insert(conn, sessions).on_conflict_do_nothing(index_elements=[sessions.c.id])
        await conn.execute(
            statement,
            [
                {
                    "id": s.id,
                    "user_id": s.user_id,
                    "data": s.data,
                    "created_at": s.created_at,
                    "last_accessed": s.last_accessed,
                    "expires_at": s.expires_at,
                    "max_expires_at": s.max_expires_at,
                    "version": s.version,
                    "sealed_id": s.sealed,
                }
                for s in fresh
            ],
        )


@dataclass
class CartLine:
    where: str
    session_id: str
    product_id: str
    quantity: int
    added_at: datetime
    updated_at: datetime
    price: Any


def cart_lines(
    pos: int, cart: Any, imported: dict[str, str], report: SessionReport
) -> Iterator[CartLine]:
    """The valid items of one Phase 1 cart whose session this run imported."""
    report.carts_read += 1
    where = f"carts[{pos}]"
    if type(cart) is not dict:
        report.problems.add(where, "not a JSON object")
        return
    session_id = cart.get("sessionId")
    if session_id not in imported:
        report.carts_skipped += 1
        return
    items = cart.get("items") or []
    if type(items) is not list:
        report.problems.add(where, "items must be an array", session_id)
        return
    cart_created = timestamp(cart, "createdAt")
    cart_updated = timestamp(cart, "updatedAt")
    seen: set[str] = set()
    for index, item in enumerate(items):
        item_where = f"{where}.items[{index}]"
        problem = item_problem(item, seen)
        added = timestamp(item, "addedAt") if type(item) is dict else None
        if problem is None and isinstance(added, str):
            problem = added
        if problem is not None:
            report.cart_items_refused += 1
            report.problems.add(item_where, problem, session_id)
            continue
        seen.add(item["productId"])
        fallback = cart_created if isinstance(cart_created, datetime) else None
        added_at = added if isinstance(added, datetime) else fallback
        if added_at is None:
            report.cart_items_refused += 1
            report.problems.add(item_where, "addedAt is missing", session_id)
            continue
        updated = cart_updated if isinstance(cart_updated, datetime) else added_at
        yield CartLine(
            item_where,
            session_id,
            item["productId"],
            item["quantity"],
            added_at,
            max(added_at, updated),
            item.get("price"),
        )


def item_problem(item: Any, seen: set[str]) -> str | None:
    if type(item) is not dict:
        return "not a JSON object"
    product_id = item.get("productId")
    if type(product_id) is not str or not product_id:
        return "productId is missing"
    quantity = item.get("quantity")
    if type(quantity) is not int or not 1 <= quantity <= MAX_QUANTITY:
        return f"quantity must be a positive integer, not {quantity!r}"
    if product_id in seen:
        return f"product {product_id} appears twice in the cart"
    return None


async def import_carts(
    engine: AsyncEngine, path: Path, imported: dict[str, str], report: SessionReport, bars: Bars
) -> None:
    """The carts of the sessions this run imported, as shopping_carts rows."""
    advance = bars.counter(f"reading carts from {path.name}", sources.file_size(path), "bytes")
    carts = sources.iter_items(path, "carts.item", advance)
    lines = (
        line for pos, cart in enumerate(carts) for line in cart_lines(pos, cart, imported, report)
    )
    for batch in chunks(lines, BATCH):
        prices = await catalog_prices(engine, {line.product_id for line in batch})
        rows = []
        for line in batch:
            if line.product_id not in prices:
                report.cart_items_refused += 1
                report.problems.add(
                    line.where, f"product {line.product_id} does not exist", line.session_id
                )
                continue
            if isinstance(line.price, int | float) and float(prices[line.product_id]) != float(
                line.price
            ):
                report.cart_items_repriced += 1
            rows.append(
                {
                    "session_id": imported[line.session_id],  # its key
                    "product_id": line.product_id,
                    "quantity": line.quantity,
                    "created_at": line.added_at,
                    "updated_at": line.updated_at,
                }
            )
        report.cart_items_imported += len(rows)
        if rows and not report.dry_run:
            async with engine.begin() as conn:
                statement = insert(conn, shopping_carts).on_conflict_do_nothing(
                    index_elements=[shopping_carts.c.session_id, shopping_carts.c.product_id]
                )
                await conn.execute(statement, rows)


async def catalog_prices(engine: AsyncEngine, product_ids: set[str]) -> dict[str, Any]:
    async with engine.connect() as conn:
        query = sa.select(products.c.id, products.c.price).where(
            products.c.id.in_(sorted(product_ids))
        )
        return {row.id: row.price for row in await conn.execute(query)}
