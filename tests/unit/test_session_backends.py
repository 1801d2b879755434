"""The SQL session store is chosen once, by the database's dialect; no class branches on it."""

from __future__ import annotations

import ast
from datetime import timedelta

from sqlalchemy.ext.asyncio import create_async_engine

from statebridge.stores.sessions.base import Lifetime
from statebridge.stores.sessions.sql import PostgresSessionStore, SqliteSessionStore, sql_store
from tests.support.recordings import ROOT

LIFETIME = Lifetime(timedelta(minutes=15), timedelta(days=1))


def test_the_dialect_picks_the_store() -> None:
    postgres = create_async_engine("postgresql+asyncpg://user@127.0.0.1:1/db")
    sqlite = create_async_engine("sqlite+aiosqlite:///:memory:")
    assert type(sql_store(postgres, LIFETIME)) is PostgresSessionStore
    assert type(sql_store(sqlite, LIFETIME, timedelta(seconds=60))).__name__ == "SqliteSessionStore"
    assert sql_store(sqlite, LIFETIME, timedelta(seconds=60)).grace == timedelta(seconds=60)
    assert issubclass(SqliteSessionStore, type(sql_store(sqlite, LIFETIME)).__mro__[1])


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
