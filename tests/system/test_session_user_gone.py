"""A user deleted from the database behind the servers' back (by hand in SQL, or by a schema
downgrade and upgrade) while their catalog still holds it: a new session for that user is a
404 "User not found", never a 500, on the embedded file and on PostgreSQL + Redis; the
other users go on working."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support.private_services import own_server
from tests.support.servers import Server

GONE = "user002"


@pytest.fixture(params=["embedded", pytest.param("services", marks=pytest.mark.services)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Server]]:
    with own_server(request.param, tmp_path / "server") as running:
        yield request.param, running


def delete_user(kind: str, server: Server) -> None:
    if kind == "embedded":
        files = list(server.data_dir.glob("*.db"))
        assert len(files) == 1, files
        with sqlite3.connect(files[0]) as conn:
            conn.execute("PRAGMA foreign_keys=ON")
            assert conn.execute("DELETE FROM users WHERE id = ?", (GONE,)).rowcount == 1
        return

    async def delete() -> str:
        conn = await asyncpg.connect(server.env["DATABASE_URL"], timeout=5)
        try:
            status: str = await conn.execute("DELETE FROM users WHERE id = $1", GONE)
        finally:
            await conn.close()
        return status

    assert asyncio.run(delete()) == "DELETE 1"


def test_a_session_for_a_user_deleted_meanwhile_is_a_404(server: tuple[str, Server]) -> None:
    kind, running = server
    with httpx.Client(timeout=10) as client:
        users = client.get(f"{running.stateless_url}/users").json()["data"]["users"]
        assert GONE in [user["id"] for user in users]  # the catalog holds the user
        delete_user(kind, running)
        answer = client.post(f"{running.stateful_url}/session", json={"userId": GONE})
        assert answer.status_code == 404, answer.text
        assert answer.json()["message"] == "User not found"
        assert "Session-ID" not in answer.headers
        other = client.post(f"{running.stateful_url}/session", json={"userId": "user001"})
        assert other.status_code == 200, other.text
