"""The real `statebridge` command in a subprocess, and reading its database back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from statebridge.timeutil import js_iso, parse_iso
from tests.support.recordings import PHASE1
from tests.support.servers import clean_env

REDIS_DB = int(os.environ.get("TEST_MIGRATE_REDIS_DB", "11"))


def statebridge(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real command line, in a clean environment plus `env`."""
    return subprocess.run(
        [sys.executable, "-m", "statebridge", *args],
        env=clean_env(env), capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def report(env: dict[str, str], *args: str, code: int = 0) -> dict[str, Any]:
    """Run a command with `--json` and return its report, checking the exit status."""
    result = statebridge(env, *args, "--json")
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def sql_rows(env: dict[str, str], query: str) -> list[tuple[Any, ...]]:
    """Rows of a query on the database `env` points at (PostgreSQL or the SQLite file)."""
    url = env.get("DATABASE_URL")
    if url:

        async def fetch() -> list[tuple[Any, ...]]:
            conn = await asyncpg.connect(url)
            try:
                return [tuple(row) for row in await conn.fetch(query)]
            finally:
                await conn.close()

        return asyncio.run(fetch())
    path = Path(env["STATEBRIDGE_DATA_DIR"]) / "statebridge.db"
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:  # closed: no WAL kept open
        return [tuple(row) for row in conn.execute(query)]


def table_dump(env: dict[str, str]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, as text, in primary-key order: for before/after equality."""
    orders = {
        "users": "id",
        "products": "id",
        "sessions": "id",
        "shopping_carts": "id",
        "counters": "name",
    }
    return {
        table: [
            tuple(map(str, row)) for row in sql_rows(env, f"SELECT * FROM {table} ORDER BY {key}")
        ]
        for table, key in orders.items()
    }


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value, indent=2))
    return path


def phase1(name: str) -> Any:
    return json.loads((PHASE1 / name).read_text())


def by_table(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {table["table"]: table for table in data["tables"]}


TIME_KEYS = ("createdAt", "lastAccessed", "expiresAt", "addedAt", "updatedAt")


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def shift(record: dict[str, Any], delta: timedelta) -> None:
    for key in TIME_KEYS:
        if key in record:
            record[key] = js_iso(parse_iso(record[key]) + delta)


def live_for(session: dict[str, Any], remaining: timedelta) -> timedelta:
    """The shift that leaves `remaining` until the session's expiresAt."""
    return now() + remaining - parse_iso(session["expiresAt"])


def shifted_export(tmp_path: Path, remaining: timedelta = timedelta(minutes=10)) -> Path:
    """Phase 1's export with every session and cart moved to expire `remaining` from now."""
    export = phase1("phase1-export.json")
    delta = live_for(export["sessions"][0], remaining)
    for session in export["sessions"]:
        shift(session, delta)
    for cart in export["carts"]:
        shift(cart, delta)
        for item in cart["items"]:
            shift(item, delta)
    return write_json(tmp_path / "phase1-export.json", export)
