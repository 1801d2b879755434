"""The catalog on PostgreSQL, on the asyncpg pool the session and cart stores share: each
read and each preferences change is one prepared statement, as the cart's writes are,
instead of a transaction through SQLAlchemy's engine (its checkout, BEGIN and COMMIT)."""

from __future__ import annotations

from collections import namedtuple
from typing import Any, Protocol

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from statebridge.catalog.repository import (
    Changes,
    Record,
    SqlCatalog,
    answered,
    last_changes,
    product_record,
    user_record,
)
from statebridge.db.engine import json_dumps
from statebridge.timeutil import utcnow

USER_COLUMNS = "id, name, email, preferences, created_at, updated_at"
PRODUCT_COLUMNS = "id, name, price, category"
ALL_USERS = f"SELECT {USER_COLUMNS} FROM users ORDER BY id"
USER_BY_ID = f"SELECT {USER_COLUMNS} FROM users WHERE id = $1"
ALL_PRODUCTS = f"SELECT {PRODUCT_COLUMNS} FROM products ORDER BY id"
PRODUCT_BY_ID = f"SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1"
SET_PREFERENCES = (
    f"UPDATE users SET preferences = $2::jsonb, updated_at = $3 WHERE id = $1 "
    f"RETURNING {USER_COLUMNS}"
)

UserRow = namedtuple("UserRow", ["id", "name", "email", "preferences", "created_at", "updated_at"])
ProductRow = namedtuple("ProductRow", ["id", "name", "price", "category"])


class Statements(Protocol):
    """What this needs of the stores' pool (statebridge/stores/pgpool.py)."""

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...

    async def fetch_each(self, query: str, rows: list[tuple[Any, ...]]) -> list[list[Any]]: ...


def user_of(row: Any) -> Record:
    preferences = row[3]
    return user_record(
        UserRow(row[0], row[1], row[2], orjson.loads(preferences) if preferences else None,
                row[4], row[5])
    )  # fmt: skip


def product_of(row: Any) -> Record:
    return product_record(ProductRow(*row))


class PostgresCatalog(SqlCatalog):
    def __init__(self, engine: AsyncEngine, pool: Statements) -> None:
        super().__init__(engine)
        self.pool = pool

    async def list_users(self) -> list[Record]:
        return [user_of(row) for row in await self.pool.fetch(ALL_USERS)]

    async def get_user(self, user_id: str) -> Record | None:
        rows = await self.pool.fetch(USER_BY_ID, user_id)
        return user_of(rows[0]) if rows else None

    async def list_products(self) -> list[Record]:
        return [product_of(row) for row in await self.pool.fetch(ALL_PRODUCTS)]

    async def get_product(self, product_id: str) -> Record | None:
        rows = await self.pool.fetch(PRODUCT_BY_ID, product_id)
        return product_of(rows[0]) if rows else None

    async def set_preferences_many(self, changes: Changes) -> list[Record | None]:
        """As `SqlCatalog.set_preferences_many`, one statement per user on the pool."""
        now = utcnow()
        rows = [
            (user_id, json_dumps(preferences), now)
            for user_id, preferences in last_changes(changes)
        ]
        answers = await self.pool.fetch_each(SET_PREFERENCES, rows)
        written = {row[0]: user_of(found[0]) for row, found in zip(rows, answers, strict=True)
                   if found}  # fmt: skip
        return answered(changes, written)
