"""Carts on SQLAlchemy, as the embedded SQLite default keeps them: each change is one
upsert or delete and the read back, in one IMMEDIATE transaction."""

from __future__ import annotations

from collections.abc import Awaitable

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError

from statebridge.db.tables import shopping_carts
from statebridge.stores.carts.base import CartItem, CartStore, Line, SessionGone
from statebridge.timeutil import utcnow

LINES = sa.select(
    shopping_carts.c.id,
    shopping_carts.c.product_id,
    shopping_carts.c.quantity,
    shopping_carts.c.created_at,
    shopping_carts.c.updated_at,
).order_by(shopping_carts.c.id)


class SqliteCartStore(CartStore):
    async def items(
        self, session_id: str, started: Awaitable[list[Line]] | None = None
    ) -> list[CartItem]:
        if started is not None:
            return await self._items(await started)
        async with self.engine.connect() as conn:
            rows = await conn.execute(LINES.where(shopping_carts.c.session_id == session_id))
            lines = list(rows)
        # outside: on SQLite every transaction holds the write lock (BEGIN IMMEDIATE), and
        # the catalog may need a connection of its own to reload
        return await self._items(lines)

    async def add(self, session_id: str, product_id: str, quantity: int) -> list[CartItem]:
        now = utcnow()
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
        try:
            async with self.engine.begin() as conn:
                await conn.execute(upsert)
                rows = await conn.execute(LINES.where(shopping_carts.c.session_id == session_id))
                lines = list(rows)
        except IntegrityError as exc:  # the only constraints left are the foreign keys
            raise SessionGone(session_id) from exc
        return await self._items(lines)

    async def remove(self, session_id: str, product_id: str) -> list[CartItem]:
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
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.delete(shopping_carts).where(shopping_carts.c.session_id == session_id)
            )
