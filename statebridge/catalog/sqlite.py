"""The catalog in the embedded SQLite file, on the process's own `sqlite3` connection
(statebridge/db/local.py): reads without a thread hop, and a preferences change in the same
shared transaction (group commit) as the session writes that arrive with it, instead of a
transaction of its own through aiosqlite's thread."""

from __future__ import annotations

from functools import cached_property

import sqlalchemy as sa
from sqlalchemy import Connection

from statebridge.catalog.repository import (
    Changes,
    Record,
    SqlCatalog,
    answered,
    last_changes,
    product_record,
    user_record,
)
from statebridge.db.local import LocalSqlite, local_sqlite
from statebridge.db.tables import products, users
from statebridge.timeutil import utcnow

# built once: the compiled form is kept by the statement itself
ALL_USERS = sa.select(users).order_by(users.c.id)
USER_BY_ID = sa.select(users).where(users.c.id == sa.bindparam("uid"))
ALL_PRODUCTS = sa.select(products).order_by(products.c.id)
PRODUCT_BY_ID = sa.select(products).where(products.c.id == sa.bindparam("pid"))
SET_PREFERENCES = (
    sa.update(users)
    .where(users.c.id == sa.bindparam("uid"))
    .values(preferences=sa.bindparam("prefs"), updated_at=sa.bindparam("now"))
    .returning(*users.c)
)


class SqliteCatalog(SqlCatalog):
    @cached_property
    def local(self) -> LocalSqlite:
        return local_sqlite(self.engine)

    async def list_users(self) -> list[Record]:
        return [user_record(row) for row in await self.local.select(ALL_USERS, {})]

    async def get_user(self, user_id: str) -> Record | None:
        row = await self.local.select_first(USER_BY_ID, {"uid": user_id})
        return user_record(row) if row is not None else None

    async def list_products(self) -> list[Record]:
        return [product_record(row) for row in await self.local.select(ALL_PRODUCTS, {})]

    async def get_product(self, product_id: str) -> Record | None:
        row = await self.local.select_first(PRODUCT_BY_ID, {"pid": product_id})
        return product_record(row) if row is not None else None

    async def set_preferences_many(self, changes: Changes) -> list[Record | None]:
        """As `SqlCatalog.set_preferences_many`, in the next shared transaction."""
        now = utcnow()

        def work(conn: Connection) -> dict[str, Record]:
            written: dict[str, Record] = {}
            for user_id, preferences in last_changes(changes):
                params = {"uid": user_id, "prefs": preferences, "now": now}
                row = self.local.first_in(conn, SET_PREFERENCES, params)
                if row is not None:
                    written[user_id] = user_record(row)
            return written

        return answered(changes, await self.local.write(work))
