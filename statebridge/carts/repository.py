"""Shopping carts: one row per (session, product), changed only by atomic statements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from statebridge.db.tables import products, sessions, shopping_carts
from statebridge.timeutil import js_iso, utcnow

CENT = Decimal("0.01")


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


ITEMS = (
    sa.select(
        shopping_carts.c.product_id,
        products.c.name,
        products.c.price,
        shopping_carts.c.quantity,
        shopping_carts.c.created_at,
        shopping_carts.c.updated_at,
    )
    .join(products, products.c.id == shopping_carts.c.product_id)
    .order_by(shopping_carts.c.id)
)


class CartRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._insert = dialect.insert

    async def items(self, session_id: str) -> list[CartItem]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(ITEMS.where(shopping_carts.c.session_id == session_id))
            return [CartItem(*row) for row in rows]

    async def add(self, session_id: str, product_id: str, quantity: int) -> list[CartItem]:
        """Add `quantity` to the product's line: one upsert, no read-modify-write."""
        now = utcnow()
        insert = self._insert(shopping_carts).values(
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
            rows = await conn.execute(ITEMS.where(shopping_carts.c.session_id == session_id))
            return [CartItem(*row) for row in rows]

    async def remove(self, session_id: str, product_id: str) -> list[CartItem]:
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.delete(shopping_carts).where(
                    shopping_carts.c.session_id == session_id,
                    shopping_carts.c.product_id == product_id,
                )
            )
            rows = await conn.execute(ITEMS.where(shopping_carts.c.session_id == session_id))
            return [CartItem(*row) for row in rows]

    async def clear(self, session_id: str) -> None:
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
