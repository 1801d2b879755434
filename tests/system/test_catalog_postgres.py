"""The catalog on the stores' asyncpg pool (statebridge/catalog/postgres.py) answers as the
catalog through SQLAlchemy does, on a real PostgreSQL: the same records for every read, the
same answer and the same stored row for a preferences change, one user or several."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from statebridge.catalog.postgres import PostgresCatalog
from statebridge.catalog.repository import SqlCatalog, seed_if_empty
from statebridge.db.engine import create_engine
from statebridge.stores.pgpool import PgPool

pytestmark = pytest.mark.services


async def stored_users(url: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT id, preferences::text, updated_at > created_at FROM users ORDER BY id"
        )
        return [tuple(row) for row in rows]
    finally:
        await conn.close()


async def compare(url: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    pool = PgPool(engine)
    try:
        await seed_if_empty(engine)
        by_sql, by_pool = SqlCatalog(engine), PostgresCatalog(engine, pool)
        assert await by_pool.list_users() == await by_sql.list_users()
        assert await by_pool.list_products() == await by_sql.list_products()
        for user_id in ("user001", "user002", "nobody"):
            assert await by_pool.get_user(user_id) == await by_sql.get_user(user_id)
        for product_id in ("prod001", "prod003", "nobody"):
            assert await by_pool.get_product(product_id) == await by_sql.get_product(product_id)
        products = await by_pool.list_products()
        assert [(p["id"], type(p["price"])) for p in products][:1] == [("prod001", float)]

        one = [("user002", {"theme": "dark", "ü": [1, None]})]
        answer = await by_pool.set_preferences_many(one)
        assert answer[0] is not None and answer[0]["preferences"] == one[0][1]
        assert answer[0]["updatedAt"] != answer[0]["createdAt"]
        assert await by_pool.get_user("user002") == await by_sql.get_user("user002")
        assert (await by_sql.get_user("user002") or {})["preferences"] == one[0][1]

        # several users, one twice, one unknown: each change answered with its own preferences,
        # the row left with the last one, the unknown user None
        many = [
            ("user002", {"theme": "light"}),
            ("user001", {"n": 1}),
            ("nobody", {"x": 1}),
            ("user002", {"theme": "blue"}),
        ]
        answers = await by_pool.set_preferences_many(many)
        assert [a["preferences"] if a else None for a in answers] == [
            {"theme": "light"}, {"n": 1}, None, {"theme": "blue"},
        ]  # fmt: skip
        after_pool = await stored_users(url)
        answers_sql = await by_sql.set_preferences_many(many)
        assert [a["preferences"] if a else None for a in answers_sql] == [
            a["preferences"] if a else None for a in answers
        ]
        assert await stored_users(url) == after_pool
        assert [row[1] for row in after_pool] == ['{"n": 1}', '{"theme": "blue"}']
    finally:
        await pool.close()
        await engine.dispose()


def test_the_pool_catalog_answers_as_the_sqlalchemy_catalog(pg_env: dict[str, str]) -> None:
    asyncio.run(compare(pg_env["DATABASE_URL"]))


async def race(url: str) -> None:
    """Two instances' batches over the same users, given in opposite orders, at once."""
    engines = [
        create_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1)) for _ in (1, 2)
    ]
    pools = [PgPool(engine) for engine in engines]
    try:
        await seed_if_empty(engines[0])
        first, second = (PostgresCatalog(e, p) for e, p in zip(engines, pools, strict=True))
        users = ["user001", "user002"]  # the seeded users
        for round_ in range(60):
            forward = [(user, {"by": "first", "round": round_}) for user in users]
            backward = [(user, {"by": "second", "round": round_}) for user in reversed(users)]
            answers = await asyncio.gather(
                first.set_preferences_many(forward), second.set_preferences_many(backward)
            )
            assert all(a is not None for batch in answers for a in batch)
            # whichever batch committed last wrote every row: never a mix of the two
            rows = {row[1] for row in await stored_users(url)}
            assert len(rows) == 1, rows
    finally:
        for pool in pools:
            await pool.close()
        for engine in engines:
            await engine.dispose()


def test_two_instances_changing_the_same_users_at_once_never_deadlock(
    pg_env: dict[str, str],
) -> None:
    """Each batch locks its rows in id order before it writes them (one statement), so
    two batches never wait on each other in a cycle, whatever order they list users in."""
    asyncio.run(race(pg_env["DATABASE_URL"]))
