"""The catalog on PostgreSQL, on the asyncpg pool the session and cart stores share: each
read and each batch of preferences changes is one prepared statement, as the cart's writes
are, instead of a transaction through SQLAlchemy's engine (its checkout, BEGIN and
COMMIT)."""

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
# $1 user ids (each once), $2 their preferences, $3 the time: one statement for the whole
# batch, atomic alone (no BEGIN/COMMIT round trips). A plain WHERE (no join), so that a row
# another instance changed meanwhile is re-read and still written (a join is not re-checked
# that way); two batches that wait on each other in a cycle are tried again, as sessions are.
SET_PREFERENCES_MANY = f"""
UPDATE users SET preferences = ($2::jsonb[])[array_position($1::text[], id)], updated_at = $3
WHERE id = ANY($1::text[])
RETURNING {USER_COLUMNS}
"""

UserRow = namedtuple("UserRow", ["id", "name", "email", "preferences", "created_at", "updated_at"])
ProductRow = namedtuple("ProductRow", ["id", "name", "price", "category"])


class Statements(Protocol):
    """What this needs of the stores' pool (statebridge/stores/pgpool.py)."""

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...

    async def fetch_retrying(self, query: str, *args: Any) -> list[Any]: ...


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
        """As `SqlCatalog.set_preferences_many`, in one statement on the pool."""
        last = last_changes(changes)
        ids = [user_id for user_id, _ in last]
        values = [json_dumps(preferences) for _, preferences in last]
        rows = await self.pool.fetch_retrying(SET_PREFERENCES_MANY, ids, values, utcnow())
        return answered(changes, {row[0]: user_of(row) for row in rows})
