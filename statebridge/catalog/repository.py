"""Users and products: the catalog, behind one narrow interface."""

from __future__ import annotations

import json
from decimal import Decimal
from importlib import resources
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from statebridge.db.engine import begin_immediate
from statebridge.db.tables import products, users
from statebridge.timeutil import js_iso, utcnow

Record = dict[str, Any]


class Catalog(Protocol):
    async def list_users(self) -> list[Record]: ...
    async def get_user(self, user_id: str) -> Record | None: ...
    async def list_products(self) -> list[Record]: ...
    async def get_product(self, product_id: str) -> Record | None: ...
    async def set_preferences(self, user_id: str, preferences: dict[str, Any]) -> Record | None: ...
    async def set_preferences_many(
        self, changes: list[tuple[str, dict[str, Any]]]
    ) -> list[Record | None]: ...


def user_record(row: Any) -> Record:
    """A users row (SQLAlchemy's, or a named tuple with its columns) as the API shows it."""
    record: Record = {
        "id": row.id,
        "name": row.name,
        "email": row.email,
        "preferences": row.preferences if row.preferences is not None else {},
    }
    if row.created_at is not None:
        record["createdAt"] = js_iso(row.created_at)
    if row.updated_at is not None:
        record["updatedAt"] = js_iso(row.updated_at)
    return record


Changes = list[tuple[str, dict[str, Any]]]  # (user id, preferences), in arrival order


def last_changes(changes: Changes) -> list[tuple[str, dict[str, Any]]]:
    """Each user's last change, in id order: the rows a batch writes, and the order it
    writes them in (so that two batches never wait on each other in a cycle)."""
    last = {user_id: preferences for user_id, preferences in changes}
    return sorted(last.items())


def answered(changes: Changes, written: dict[str, Record]) -> list[Record | None]:
    """Each change's answer: the user as written, with that change's own preferences (as if
    each had been applied alone and at once overwritten by the next); None for an unknown
    user."""
    return [
        {**written[user_id], "preferences": preferences} if user_id in written else None
        for user_id, preferences in changes
    ]


def money(value: Decimal | float) -> float:
    return float(value)


def product_record(row: Any) -> Record:
    return {
        "id": row.id,
        "name": row.name,
        "price": money(row.price),
        "category": row.category,
    }


class SqlCatalog:
    """The catalog in SQL (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def list_users(self) -> list[Record]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.select(users).order_by(users.c.id))
            return [user_record(row) for row in rows]

    async def get_user(self, user_id: str) -> Record | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(users).where(users.c.id == user_id))).first()
            return user_record(row) if row else None

    async def list_products(self) -> list[Record]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.select(products).order_by(products.c.id))
            return [product_record(row) for row in rows]

    async def get_product(self, product_id: str) -> Record | None:
        async with self.engine.connect() as conn:
            query = sa.select(products).where(products.c.id == product_id)
            row = (await conn.execute(query)).first()
            return product_record(row) if row else None

    async def set_preferences(self, user_id: str, preferences: dict[str, Any]) -> Record | None:
        return (await self.set_preferences_many([(user_id, preferences)]))[0]

    async def set_preferences_many(self, changes: Changes) -> list[Record | None]:
        """Apply the changes in order, in one transaction: each user's row is written once,
        with the last of its changes (`last_changes`), and each change is answered as
        `answered` says."""
        now = utcnow()
        written: dict[str, Record] = {}
        async with self.engine.begin() as conn:
            for user_id, preferences in last_changes(changes):
                statement = (
                    sa.update(users)
                    .where(users.c.id == user_id)
                    .values(preferences=preferences, updated_at=now)
                    .returning(*users.c)
                )
                row = (await conn.execute(statement)).first()
                if row is not None:
                    written[user_id] = user_record(row)
        return answered(changes, written)


SEED_LOCK = 0x5B_5EED  # the advisory lock id of the first-start seeding


def seed_data() -> dict[str, list[Record]]:
    text = resources.files("statebridge").joinpath("data/seed.json").read_text("utf-8")
    data: dict[str, list[Record]] = json.loads(text)
    return data


async def seed_if_empty(engine: AsyncEngine) -> bool:
    """Load Phase 1's users and products into an empty catalog; True when it did."""
    async with begin_immediate(engine) as conn:
        if engine.dialect.name == "postgresql":
            # replicas starting together: the second waits here, then finds the rows
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEED_LOCK})
        count = (await conn.execute(sa.select(sa.func.count()).select_from(users))).scalar_one()
        product_count = (
            await conn.execute(sa.select(sa.func.count()).select_from(products))
        ).scalar_one()
        if count or product_count:
            return False
        data = seed_data()
        now = utcnow()
        await conn.execute(
            sa.insert(users),
            [{**user, "created_at": now, "updated_at": now} for user in data["users"]],
        )
        await conn.execute(
            sa.insert(products),
            [
                {
                    **product,
                    "price": Decimal(str(product["price"])),
                    "created_at": now,
                    "updated_at": now,
                }
                for product in data["products"]
            ],
        )
        return True
