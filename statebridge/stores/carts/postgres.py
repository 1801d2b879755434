"""Carts on PostgreSQL: every verb is one statement on the stores' shared asyncpg pool
(statebridge/stores/pgpool.py), prepared once per connection and run outside an explicit
transaction.

Adding a line and reading the cart back is one round trip (a data-modifying CTE), with no
read-modify-write in Python. Reads of one event-loop turn share one query, and adds of one
turn one statement (statebridge/batching.py). A foreign key refusing a line is
`SessionGone`, raised by `_fetch`; an unreachable database is the pool's `StoreUnavailable`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncEngine

from statebridge.batching import Coalescer, rounds
from statebridge.stores.carts.base import CartItem, CartStore, Line, ProductLines, SessionGone
from statebridge.stores.pgpool import PgPool
from statebridge.timeutil import utcnow

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


def by_session(rows: Iterable[Any]) -> dict[str, list[Line]]:
    """(session_id, *line) rows -> each session's lines, in the rows' order."""
    lines: dict[str, list[Line]] = {}
    for row in rows:
        lines.setdefault(row[0], []).append(tuple(row[1:]))
    return lines


class PostgresCartStore(CartStore):
    def __init__(
        self, engine: AsyncEngine, catalog: ProductLines | None = None, pool: PgPool | None = None
    ) -> None:
        super().__init__(engine, catalog)
        self.owns_pool = pool is None
        self.pool = pool or PgPool(engine)
        self._reads: Coalescer[str, list[Line]] = Coalescer(self._items_many)
        self._adds: Coalescer[Addition, list[Line]] = Coalescer(self._add_many)

    async def _fetch(self, query: str, *args: Any) -> list[Any]:
        """The pool's fetch; a foreign key refusing a line means the session is gone."""
        try:
            return await self.pool.fetch(query, *args)
        except asyncpg.ForeignKeyViolationError as exc:
            raise SessionGone(*args[:1]) from exc

    def start_read(self, session_id: str) -> Awaitable[list[Line]]:
        return self._reads.enqueue(session_id)

    async def _items_many(self, session_ids: list[str]) -> list[list[Line]]:
        lines = by_session(await self._fetch(PG_ITEMS_MANY, sorted(set(session_ids))))
        return [lines.get(session_id, []) for session_id in session_ids]

    async def _add_many(self, additions: list[Addition]) -> list[list[Line] | BaseException]:
        """Each session's additions in order: the first of every session in one statement,
        then the second, and so on (one statement cannot change a line twice)."""
        results: list[list[Line] | BaseException] = [[] for _ in additions]
        for indexes in rounds([addition[0] for addition in additions]):
            indexes.sort(key=lambda index: additions[index][:2])
            batch = [additions[index] for index in indexes]
            try:
                rows = await self._fetch(
                    PG_ADD_MANY, *(list(column) for column in zip(*batch, strict=True))
                )
            except SessionGone:  # a session is gone: find which, alone
                for index in indexes:
                    results[index] = await self._add_one(*additions[index])
                continue
            lines = by_session(rows)
            for index in indexes:
                results[index] = lines.get(additions[index][0], [])
        return results

    async def _add_one(
        self, session_id: str, product_id: str, quantity: int, now: datetime
    ) -> list[Line] | BaseException:
        try:
            rows = await self._fetch(PG_ADD, session_id, product_id, quantity, now)
        except SessionGone as exc:
            return exc
        return [tuple(row) for row in rows]

    async def items(
        self, session_id: str, started: Awaitable[list[Line]] | None = None
    ) -> list[CartItem]:
        if started is None:
            started = self._reads.enqueue(session_id)
        return await self._items(await started)

    async def add(self, session_id: str, product_id: str, quantity: int) -> list[CartItem]:
        """An unknown session raises `SessionGone` (its foreign key)."""
        lines = await self._adds.submit((session_id, product_id, quantity, utcnow()))
        return await self._items(lines)

    async def remove(self, session_id: str, product_id: str) -> list[CartItem]:
        return await self._items(await self._fetch(PG_REMOVE, session_id, product_id))

    async def clear(self, session_id: str) -> None:
        await self._fetch(PG_CLEAR, session_id)

    async def close(self) -> None:
        if self.owns_pool:
            await self.pool.close()
