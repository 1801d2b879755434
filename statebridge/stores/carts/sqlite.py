"""Carts on SQLAlchemy, as the embedded SQLite default keeps them: each change is one
upsert or delete and the read back, in the process's shared IMMEDIATE transaction (group
commit, statebridge/db/local.py); a read is a plain SELECT on the loop's own connection."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable
from functools import cached_property
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import sqlite

from statebridge.db.local import LocalSqlite, local_sqlite
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


# built once: a statement made per call costs more to build and key than to run
LINES_OF = LINES.where(shopping_carts.c.session_id == sa.bindparam("sid"))
_INSERT = sqlite.insert(shopping_carts).values(
    session_id=sa.bindparam("sid"),
    product_id=sa.bindparam("pid"),
    quantity=sa.bindparam("qty"),
    created_at=sa.bindparam("now"),
    updated_at=sa.bindparam("now"),
)
ADD_LINE = _INSERT.on_conflict_do_update(
    index_elements=[shopping_carts.c.session_id, shopping_carts.c.product_id],
    set_={
        "quantity": shopping_carts.c.quantity + _INSERT.excluded.quantity,
        "updated_at": _INSERT.excluded.updated_at,
    },
)
REMOVE_LINE = sa.delete(shopping_carts).where(
    shopping_carts.c.session_id == sa.bindparam("sid"),
    shopping_carts.c.product_id == sa.bindparam("pid"),
)
CLEAR = sa.delete(shopping_carts).where(shopping_carts.c.session_id == sa.bindparam("sid"))


class SqliteCartStore(CartStore):
    @cached_property
    def local(self) -> LocalSqlite:
        return local_sqlite(self.engine)

    def _lines(self, conn: Connection, session_id: str) -> list[Any]:
        return self.local.rows_in(conn, LINES_OF, {"sid": session_id})

    async def items(
        self, session_id: str, started: Awaitable[list[Line]] | None = None
    ) -> list[CartItem]:
        if started is not None:
            return await self._items(await started)
        return await self._items(await self.local.select(LINES_OF, {"sid": session_id}))

    async def add(self, session_id: str, product_id: str, quantity: int) -> list[CartItem]:
        params = {"sid": session_id, "pid": product_id, "qty": quantity, "now": utcnow()}

        def work(conn: Connection) -> list[Any]:
            self.local.rows_in(conn, ADD_LINE, params)
            return self._lines(conn, session_id)

        try:
            lines = await self.local.write(work)
        except sqlite3.IntegrityError as exc:  # the only constraints left are the foreign keys
            raise SessionGone(session_id) from exc
        return await self._items(lines)

    async def remove(self, session_id: str, product_id: str) -> list[CartItem]:
        def work(conn: Connection) -> list[Any]:
            self.local.rows_in(conn, REMOVE_LINE, {"sid": session_id, "pid": product_id})
            return self._lines(conn, session_id)

        return await self._items(await self.local.write(work))

    async def clear(self, session_id: str) -> None:
        def work(conn: Connection) -> None:
            self.local.rows_in(conn, CLEAR, {"sid": session_id})

        await self.local.write(work)
