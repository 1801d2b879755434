"""Shopping carts: one row per (session, product), changed only by atomic statements.

On PostgreSQL every verb is one statement on a plain asyncpg pool, prepared once per
connection and run outside an explicit transaction: adding a line and reading the cart
back is one round trip (a data-modifying CTE), with no read-modify-write in Python.
Product names and prices come from the catalog, which is cached in process, instead of a
JOIN. SQLite, local and embedded, keeps SQLAlchemy and one IMMEDIATE transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from statebridge.db.tables import products, sessions, shopping_carts
from statebridge.stores.batching import Coalescer
from statebridge.timeutil import js_iso, utcnow

CENT = Decimal("0.01")
Line = tuple[int, str, int, datetime, datetime]  # id, product_id, quantity, added, updated


@dataclass
class CartItem:
    product_id: str
    name: str
    price: Decimal
    quantity: int
    added_at: datetime
    updated_at: datetime

    def view(self) -> dict[str, Any]:
        return {
            "productId": self.product_id,
            "name": self.name,
            "price": float(self.price),
            "quantity": self.quantity,
            "addedAt": js_iso(self.added_at),
        }


def cart_total(items: list[CartItem]) -> float:
    """The sum of price x quantity, in exact decimals, rounded to cents."""
    total = sum((item.price * item.quantity for item in items), Decimal(0))
    return float(total.quantize(CENT, rounding=ROUND_HALF_UP))


class ProductLines(Protocol):
    async def product_lines(self, product_ids: set[str]) -> dict[str, tuple[str, Decimal]]:
        """Name and exact price of each product that exists."""
        ...


class SqlProductLines:
    """Names and prices straight from the products table (when no cached catalog is given)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def product_lines(self, product_ids: set[str]) -> dict[str, tuple[str, Decimal]]:
        if not product_ids:
            return {}
        query = sa.select(products.c.id, products.c.name, products.c.price).where(
            products.c.id.in_(sorted(product_ids))
        )
        async with self.engine.connect() as conn:
            rows = await conn.execute(query)
            return {row.id: (row.name, Decimal(str(row.price))) for row in rows}


COLUMNS = "id, product_id, quantity, created_at, updated_at"
# The CTE's change is invisible to the rest of the statement (one snapshot), so the other
# lines are read as they were and the changed line comes from RETURNING.
PG_ADD = f"""
WITH line AS (
    INSERT INTO shopping_carts AS cart (session_id, product_id, quantity, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $4)
    ON CONFLICT (session_id, product_id) DO UPDATE
    SET quantity = cart.quantity + EXCLUDED.quantity, updated_at = EXCLUDED.updated_at
    RETURNING {COLUMNS}
)
SELECT {COLUMNS} FROM line
UNION ALL
SELECT {COLUMNS} FROM shopping_carts WHERE session_id = $1 AND product_id <> $2
ORDER BY id
"""
# The batched forms: the reads of one event-loop turn in one query, the adds of one turn
# (one per session) in one statement. Lines are locked in (session, product) order, the
# order the arrays are sent in, so concurrent batches cannot deadlock each other.
PG_ITEMS_MANY = (
    f"SELECT session_id, {COLUMNS} FROM shopping_carts WHERE session_id = ANY($1::text[]) "
    "ORDER BY id"
)
PG_ADD_MANY = f"""
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamp[])
        AS t(session_id, product_id, quantity, moment)
), line AS (
    INSERT INTO shopping_carts AS cart (session_id, product_id, quantity, created_at, updated_at)
    SELECT session_id, product_id, quantity, moment, moment FROM input
    ON CONFLICT (session_id, product_id) DO UPDATE
    SET quantity = cart.quantity + EXCLUDED.quantity, updated_at = EXCLUDED.updated_at
    RETURNING session_id, {COLUMNS}
)
SELECT session_id, {COLUMNS} FROM line
UNION ALL
SELECT cart.session_id, cart.id, cart.product_id, cart.quantity, cart.created_at, cart.updated_at
FROM shopping_carts AS cart
JOIN input ON cart.session_id = input.session_id AND cart.product_id <> input.product_id
ORDER BY id
"""
Addition = tuple[str, str, int, datetime]  # session, product, quantity, when
PG_REMOVE = f"""
WITH gone AS (DELETE FROM shopping_carts WHERE session_id = $1 AND product_id = $2)
SELECT {COLUMNS} FROM shopping_carts WHERE session_id = $1 AND product_id <> $2 ORDER BY id
"""
PG_CLEAR = "DELETE FROM shopping_carts WHERE session_id = $1"

LINES = sa.select(
    shopping_carts.c.id,
    shopping_carts.c.product_id,
    shopping_carts.c.quantity,
    shopping_carts.c.created_at,
    shopping_carts.c.updated_at,
).order_by(shopping_carts.c.id)


def by_session(rows: Iterable[Any]) -> dict[str, list[Line]]:
    """(session_id, *line) rows -> each session's lines, in the rows' order."""
    lines: dict[str, list[Line]] = {}
    for row in rows:
        lines.setdefault(row[0], []).append(tuple(row[1:]))
    return lines


async def keep_as_is(_connection: Any) -> None:
    """No reset on release: asyncpg's default costs a round trip per checkout, and these
    statements leave nothing behind (no SET, LISTEN, cursors or locks, no open transaction)."""


def asyncpg_dsn(engine: AsyncEngine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class CartRepository:
    def __init__(
        self, engine: AsyncEngine, catalog: ProductLines | None = None, pool_size: int = 10
    ) -> None:
        self.engine = engine
        self.catalog: ProductLines = catalog or SqlProductLines(engine)
        self.postgres = engine.dialect.name == "postgresql"
        self.pool_size = pool_size
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()
        self._reads: Coalescer[str, list[Line]] = Coalescer(self._items_many)
        self._adds: Coalescer[Addition, list[Line]] = Coalescer(self._add_many)

    async def _pg(self) -> Any:
        """The asyncpg pool, opened on first use."""
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        asyncpg_dsn(self.engine),
                        min_size=1,
                        max_size=self.pool_size,
                        reset=keep_as_is,
                    )
        return self._pool

    async def _items(self, lines: Iterable[Any]) -> list[CartItem]:
        rows: list[Line] = [tuple(row) for row in lines]
        names = await self.catalog.product_lines({row[1] for row in rows})
        items = []
        for _id, product_id, quantity, added_at, updated_at in rows:
            line = names.get(product_id)
            if line is not None:  # a product deleted meanwhile takes its lines with it
                items.append(CartItem(product_id, line[0], line[1], quantity, added_at, updated_at))
        return items

    def start_read(self, session_id: str) -> Awaitable[list[Line]] | None:
        """Begin reading a cart without waiting (PostgreSQL only; None elsewhere), so that it
        can overlap another round trip, such as the session check."""
        if not self.postgres:
            return None
        return self._reads.enqueue(session_id)

    async def _items_many(self, session_ids: list[str]) -> list[list[Line]]:
        pool = await self._pg()
        lines = by_session(await pool.fetch(PG_ITEMS_MANY, sorted(set(session_ids))))
        return [lines.get(session_id, []) for session_id in session_ids]

    async def _add_many(self, additions: list[Addition]) -> list[list[Line] | BaseException]:
        """Each session's additions in order: the first of every session in one statement,
        then the second, and so on (one statement cannot change a line twice)."""
        results: list[list[Line] | BaseException] = [[] for _ in additions]
        rounds: list[list[int]] = []
        seen: dict[str, int] = {}
        for index, (session_id, *_rest) in enumerate(additions):
            depth = seen.get(session_id, 0)
            seen[session_id] = depth + 1
            if depth == len(rounds):
                rounds.append([])
            rounds[depth].append(index)
        pool = await self._pg()
        for indexes in rounds:
            indexes.sort(key=lambda index: additions[index][:2])
            batch = [additions[index] for index in indexes]
            try:
                rows = await pool.fetch(
                    PG_ADD_MANY, *(list(column) for column in zip(*batch, strict=True))
                )
            except asyncpg.ForeignKeyViolationError:  # a session is gone: find which, alone
                for index in indexes:
                    results[index] = await self._add_one(pool, *additions[index])
                continue
            lines = by_session(rows)
            for index in indexes:
                results[index] = lines.get(additions[index][0], [])
        return results

    @staticmethod
    async def _add_one(
        pool: Any, session_id: str, product_id: str, quantity: int, now: datetime
    ) -> list[Line] | BaseException:
        try:
            rows = await pool.fetch(PG_ADD, session_id, product_id, quantity, now)
        except asyncpg.ForeignKeyViolationError as exc:
            return IntegrityError(PG_ADD, None, exc)
        return [tuple(row) for row in rows]

    async def items(
        self, session_id: str, started: Awaitable[list[Line]] | None = None
    ) -> list[CartItem]:
        """The cart's lines; `started` is a read begun earlier with `start_read`."""
        if started is not None:
            return await self._items(await started)
        if self.postgres:
            return await self._items(await self._reads.submit(session_id))
        async with self.engine.connect() as conn:
            rows = await conn.execute(LINES.where(shopping_carts.c.session_id == session_id))
            lines = list(rows)
        # outside: on SQLite every transaction holds the write lock (BEGIN IMMEDIATE), and
        # the catalog may need a connection of its own to reload
        return await self._items(lines)

    async def add(self, session_id: str, product_id: str, quantity: int) -> list[CartItem]:
        """Add `quantity` to the product's line: one upsert, no read-modify-write."""
        now = utcnow()
        if self.postgres:  # an unknown session raises IntegrityError (its foreign key)
            return await self._items(
                await self._adds.submit((session_id, product_id, quantity, now))
            )
        insert = sqlite.insert(shopping_carts).values(
            session_id=session_id,
            product_id=product_id,
            quantity=quantity,
            created_at=now,
            updated_at=now,
        )
        upsert = insert.on_conflict_do_update(
            index_elements=[shopping_carts.c.session_id, shopping_carts.c.product_id],
            set_={
                "quantity": shopping_carts.c.quantity + insert.excluded.quantity,
                "updated_at": insert.excluded.updated_at,
            },
        )
        async with self.engine.begin() as conn:
            await conn.execute(upsert)
            rows = await conn.execute(LINES.where(shopping_carts.c.session_id == session_id))
            lines = list(rows)
        return await self._items(lines)

    async def remove(self, session_id: str, product_id: str) -> list[CartItem]:
        if self.postgres:
            pool = await self._pg()
            return await self._items(await pool.fetch(PG_REMOVE, session_id, product_id))
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.delete(shopping_carts).where(
                    shopping_carts.c.session_id == session_id,
                    shopping_carts.c.product_id == product_id,
                )
            )
            rows = await conn.execute(LINES.where(shopping_carts.c.session_id == session_id))
            lines = list(rows)
        return await self._items(lines)

    async def clear(self, session_id: str) -> None:
        if self.postgres:
            pool = await self._pg()
            await pool.execute(PG_CLEAR, session_id)
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.delete(shopping_carts).where(shopping_carts.c.session_id == session_id)
            )

    async def count_active(self) -> int:
        """Non-empty carts of live sessions."""
        query = (
            sa.select(sa.func.count(sa.distinct(shopping_carts.c.session_id)))
            .join(sessions, sessions.c.id == shopping_carts.c.session_id)
            .where(sessions.c.expires_at > utcnow())
        )
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
