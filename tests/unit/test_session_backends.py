"""The SQL session store is chosen once, by the database's dialect; no class branches on it."""

from __future__ import annotations

import ast
from datetime import timedelta

from sqlalchemy.ext.asyncio import create_async_engine

from statebridge.stores.pgpool import PgPool
from statebridge.stores.sessions.base import Lifetime
from statebridge.stores.sessions.postgres import PostgresSessionStore
from statebridge.stores.sessions.sql import SqlSessionStore, sql_store
from statebridge.stores.sessions.sqlite import SqliteSessionStore
from tests.support.recordings import ROOT

LIFETIME = Lifetime(timedelta(minutes=15), timedelta(days=1))


def test_the_dialect_picks_the_store() -> None:
    postgres = create_async_engine("postgresql+asyncpg://user@127.0.0.1:1/db")
    sqlite = create_async_engine("sqlite+aiosqlite:///:memory:")
    assert type(sql_store(postgres, LIFETIME)) is PostgresSessionStore
    assert type(sql_store(sqlite, LIFETIME, timedelta(seconds=60))).__name__ == "SqliteSessionStore"
    assert sql_store(sqlite, LIFETIME, timedelta(seconds=60)).grace == timedelta(seconds=60)
    assert issubclass(SqliteSessionStore, SqlSessionStore)
    assert issubclass(PostgresSessionStore, SqlSessionStore)


def test_postgres_sessions_share_the_pool_they_are_given() -> None:
    postgres = create_async_engine("postgresql+asyncpg://user@127.0.0.1:1/db")
    pool = PgPool(postgres)
    shared = sql_store(postgres, LIFETIME, pool=pool)
    assert isinstance(shared, PostgresSessionStore)
    assert shared.pool is pool and not shared.owns_pool
    alone = sql_store(postgres, LIFETIME)
    assert isinstance(alone, PostgresSessionStore) and alone.owns_pool


def test_no_store_class_branches_on_the_backend() -> None:
    """The choice is made once, outside the classes (`sql_store`, wiring/services.py)."""
    offenders = []
    for path in sorted((ROOT / "statebridge" / "stores").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for cls in (node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)):
            for node in ast.walk(cls):
                if isinstance(node, ast.If | ast.IfExp):
                    test = ast.unparse(node.test)
                    if "dialect" in test or "postgres" in test:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {test}")
    assert offenders == []
