"""The PostgreSQL cart store through a real server: what the database does to a cart
statement (cancelled, its connection cut off, its session row gone) reaches the client as
the envelope's 503 or 401, never a 500, and the next request is served as usual."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support.envelope import assert_envelope
from tests.support.servers import Server, stored_key

pytestmark = pytest.mark.services


@pytest.fixture
def server(services: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    """One instance on a fresh PostgreSQL database, sessions in Redis."""
    running = Server(services, tmp_path).start()
    yield running
    running.stop()


def new_session(client: httpx.Client) -> dict[str, str]:
    response = client.post("/api/stateful/session", json={"userId": "user001"})
    assert_envelope(response, 200)
    return {"Session-ID": response.headers["Session-ID"]}


def quantities(client: httpx.Client, headers: dict[str, str]) -> dict[str, int]:
    cart = assert_envelope(client.get("/api/stateful/cart", headers=headers), 200)
    return {item["productId"]: item["quantity"] for item in cart["data"]["cart"]["items"]}


async def add_cut_off_by_the_database(
    url: str, database_url: str, headers: dict[str, str], how: str
) -> httpx.Response:
    """An add left waiting on a line another transaction holds, and meanwhile its statement
    cancelled (`pg_cancel_backend`: 57014, as by a statement timeout) or its connection
    ended (`pg_terminate_backend`: 57P01, as at a shutdown) by the database."""
    holder = await asyncpg.connect(database_url)
    try:
        async with holder.transaction():
            await holder.fetch(
                "SELECT 1 FROM shopping_carts WHERE session_id = $1 FOR UPDATE",
                stored_key(headers["Session-ID"], {"DATABASE_URL": database_url}, Path()),
            )
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                adding = asyncio.create_task(
                    client.post(
                        "/api/stateful/cart/add", json={"productId": "prod001"}, headers=headers
                    )
                )
                for _ in range(200):
                    waiting = await holder.fetch(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                    )
                    if waiting:
                        break
                    await asyncio.sleep(0.05)
                assert len(waiting) == 1, "the add never waited on the held line"
                await holder.execute(f"SELECT pg_{how}_backend($1)", waiting[0]["pid"])
                return await adding
    finally:
        await holder.close()


@pytest.mark.parametrize("how", ["cancel", "terminate"])
def test_a_cart_statement_cut_off_by_the_database_is_a_503_then_served_again(
    server: Server, services: dict[str, str], how: str
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        headers = new_session(client)
        add = client.post("/api/stateful/cart/add", json={"productId": "prod001"}, headers=headers)
        assert_envelope(add, 200)

        response = asyncio.run(
            add_cut_off_by_the_database(server.url, services["DATABASE_URL"], headers, how)
        )
        body = assert_envelope(response, 503)
        assert body["message"] == "Service temporarily unavailable"
        assert response.headers["Retry-After"] == "1"

        assert quantities(client, headers) == {"prod001": 1}  # the cut-off add did nothing
        add = client.post("/api/stateful/cart/add", json={"productId": "prod001"}, headers=headers)
        assert_envelope(add, 200)
        assert quantities(client, headers) == {"prod001": 2}
    assert '"status":500' not in server.log()


def test_an_add_for_a_session_the_database_no_longer_holds_is_a_401(
    server: Server, services: dict[str, str]
) -> None:
    """The session is still in Redis but its row is gone: the cart line's foreign key
    refuses the add, alone in its batch, and the others of the batch are added."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        gone, kept = new_session(client), new_session(client)

        async def delete_row() -> None:
            conn = await asyncpg.connect(services["DATABASE_URL"])
            try:
                key = server.stored_key(gone["Session-ID"])
                await conn.execute("DELETE FROM sessions WHERE id = $1", key)
            finally:
                await conn.close()

        asyncio.run(delete_row())

        async def add_both() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as batch:
                return await asyncio.gather(
                    *(
                        batch.post(
                            "/api/stateful/cart/add", json={"productId": "prod002"}, headers=headers
                        )
                        for headers in (gone, kept, kept)
                    )
                )

        refused, *added = asyncio.run(add_both())
        body = assert_envelope(refused, 401)
        assert body["message"] == "Session not found or expired"
        for response in added:
            assert_envelope(response, 200)
        assert quantities(client, kept) == {"prod002": 2}
