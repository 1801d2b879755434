"""Shopping carts, whatever the database: the line, the total, and the `CartStore` every
backend implements (sqlite.py: SQLAlchemy, for the embedded default; postgres.py: plain
asyncpg statements, for the fast path). Which one runs is chosen once, in
statebridge/wiring/services.py.

A cart is one row per (session, product), changed only by atomic statements. Product
names and prices come from the catalog, which is cached in process, instead of a JOIN.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from statebridge.db.tables import products, sessions, shopping_carts
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


class SessionGone(Exception):
    """The cart's session (or the product) no longer exists: it ended, expired and was swept,
    or the product was deleted, between the check and the change (a foreign key refused it)."""


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


class CartStore:
    """Four verbs on one session's cart, each atomic, and a count. A backend implements
    `items`, `add`, `remove` and `clear`; an unknown session makes `add` raise
    `SessionGone`, an unreachable database raises an error the app answers with 503."""

    def __init__(self, engine: AsyncEngine, catalog: ProductLines | None = None) -> None:
        self.engine = engine
        self.catalog: ProductLines = catalog or SqlProductLines(engine)

    def start_read(self, session_id: str) -> Awaitable[list[Line]] | None:
        """Begin reading a cart without waiting, so that it can overlap another round trip,
        such as the session check; None where a backend cannot (then `items` reads)."""
        return None

    async def items(
        self, session_id: str, started: Awaitable[list[Line]] | None = None
    ) -> list[CartItem]:
        """The cart's lines; `started` is a read begun earlier with `start_read`."""
        raise NotImplementedError

    async def add(self, session_id: str, product_id: str, quantity: int) -> list[CartItem]:
        """Add `quantity` to the product's line: one upsert, no read-modify-write; returns
        the cart after it."""
        raise NotImplementedError

    async def remove(self, session_id: str, product_id: str) -> list[CartItem]:
        raise NotImplementedError

    async def clear(self, session_id: str) -> None:
        raise NotImplementedError

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
        """Release what the backend holds beside the engine (the engine is not its own)."""

    async def _items(self, lines: Iterable[Any]) -> list[CartItem]:
        """Rows of `Line` -> the cart, with names and prices from the catalog."""
        rows: list[Line] = [tuple(row) for row in lines]
        names = await self.catalog.product_lines({row[1] for row in rows})
        items = []
        for _id, product_id, quantity, added_at, updated_at in rows:
            line = names.get(product_id)
            if line is not None:  # a product deleted meanwhile takes its lines with it
                items.append(CartItem(product_id, line[0], line[1], quantity, added_at, updated_at))
        return items
