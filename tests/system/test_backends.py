"""PostgreSQL + Redis: several instances behave as one stateful server, and lose nothing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis

from statebridge.stores.sessions.redis import MARKER, session_key
from tests.support.databases import drop_pg_database, new_pg_database
from tests.support.routes import SESSION_ROUTES
from tests.support.servers import Server, clean_env, free_port, stored_key

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def pair(
    services_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server]]:
    """Two instances on one PostgreSQL database and one Redis db."""
    first = Server(services_env, tmp_path_factory.mktemp("a"), ["--migrate"]).start()
    second = Server(services_env, tmp_path_factory.mktemp("b")).start()
    yield first, second
    first.stop()
    second.stop()


def new_session(base: str, user: str = "user001") -> str:
    response = httpx.post(f"{base}/session", json={"userId": user})
    assert response.status_code == 200, response.text
    session_id = response.headers["Session-ID"]
    assert response.json()["data"]["session"]["id"] == session_id
    return session_id


def test_a_session_made_on_one_instance_works_on_the_other(pair: tuple[Server, Server]) -> None:
    first, second = pair
    session_id = new_session(first.stateful_url)
    headers = {"Session-ID": session_id}
    put = httpx.put(f"{first.stateful_url}/session", json={"data": {"k": "v"}}, headers=headers)
    assert put.status_code == 200
    got = httpx.get(f"{second.stateful_url}/session", headers=headers)
    assert got.status_code == 200
    assert got.json()["data"]["session"]["data"] == {"k": "v"}
    assert got.headers["X-Instance-ID"] != put.headers["X-Instance-ID"]
    deleted = httpx.delete(f"{second.stateful_url}/session", headers=headers)
    assert deleted.status_code == 200
    assert httpx.get(f"{first.stateful_url}/session", headers=headers).status_code == 401


async def _spread(
    urls: list[str], path: str, session_id: str, count: int, **kwargs: object
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        calls = [
            client.request(
                kwargs.get("method", "GET"),  # type: ignore[arg-type]
                f"{urls[i % len(urls)]}{path}",
                headers={"Session-ID": session_id},
                json=kwargs.get("json"),
            )
            for i in range(count)
        ]
        return await asyncio.gather(*calls)


def test_200_concurrent_cart_adds_over_two_instances_sum_to_200(
    pair: tuple[Server, Server],
) -> None:
    urls = [server.stateful_url for server in pair]
    session_id = new_session(urls[0])
    body = {"productId": "prod002", "quantity": 1}
    responses = asyncio.run(_spread(urls, "/cart/add", session_id, 200, method="POST", json=body))
    assert [r.status_code for r in responses].count(200) == 200
    cart = httpx.get(f"{urls[1]}/cart", headers={"Session-ID": session_id}).json()["data"]["cart"]
    assert cart["items"][0]["quantity"] == 200
    assert cart["total"] == round(200 * 19.99, 2)


def test_concurrent_adds_on_many_sessions_each_see_their_own_increment(
    pair: tuple[Server, Server],
) -> None:
    """Adds arriving together are batched per event-loop turn: each answer must still show
    the cart just after its own add, as if the adds had run one at a time."""
    urls = [server.stateful_url for server in pair]
    sessions = [new_session(urls[i % 2]) for i in range(8)]
    gone = new_session(urls[0])
    assert httpx.delete(f"{urls[0]}/session", headers={"Session-ID": gone}).status_code == 200
    products = ["prod001", "prod002", "prod003"]
    plan = [(sessions[i % 8], products[i % 3]) for i in range(240)] + [(gone, "prod001")] * 20

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=60), timeout=30) as c:
            calls = [
                c.post(
                    f"{urls[i % 2]}/cart/add",
                    headers={"Session-ID": session_id},
                    json={"productId": product, "quantity": 1},
                )
                for i, (session_id, product) in enumerate(plan)
            ]
            reads = [
                c.get(f"{urls[i % 2]}/cart", headers={"Session-ID": sessions[i % 8]})
                for i in range(40)
            ]
            return list(await asyncio.gather(*calls, *reads))

    responses = asyncio.run(fire())
    adds, reads = responses[: len(plan)], responses[len(plan) :]
    assert [r.status_code for r in reads].count(200) == 40
    seen: dict[tuple[str, str], list[int]] = {}
    for (session_id, product), response in zip(plan, adds, strict=True):
        if session_id == gone:
            assert response.status_code == 401, response.text
            continue
        assert response.status_code == 200, response.text
        cart = response.json()["data"]["cart"]
        assert cart["sessionId"] == session_id
        line = {item["productId"]: item["quantity"] for item in cart["items"]}
        seen.setdefault((session_id, product), []).append(line[product])
    for key, quantities in seen.items():  # every line was added to 10 times, one at a time
        assert sorted(quantities) == list(range(1, 11)), key
    for session_id in sessions:
        cart = httpx.get(f"{urls[1]}/cart", headers={"Session-ID": session_id}).json()
        items = cart["data"]["cart"]["items"]
        assert {item["productId"]: item["quantity"] for item in items} == dict.fromkeys(
            products, 10
        )


def test_100_concurrent_visits_count_exactly_100(pair: tuple[Server, Server]) -> None:
    urls = [server.stateful_url for server in pair]
    session_id = new_session(urls[0])
    responses = asyncio.run(_spread(urls, "/demonstrate/stateful", session_id, 100))
    assert [r.status_code for r in responses].count(200) == 100, [
        r.text for r in responses if r.status_code != 200
    ][:3]
    visits = sorted(r.json()["data"]["visitCount"] for r in responses)
    assert visits == list(range(1, 101))
    session = httpx.get(f"{urls[0]}/session", headers={"Session-ID": session_id}).json()
    assert session["data"]["session"]["data"]["visitCount"] == 100


def test_concurrent_session_merges_keep_every_key(pair: tuple[Server, Server]) -> None:
    urls = [server.stateful_url for server in pair]
    session_id = new_session(urls[0])

    async def merges() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(
                *[
                    client.put(
                        f"{urls[i % 2]}/session",
                        json={"data": {f"key{i}": i}},
                        headers={"Session-ID": session_id},
                    )
                    for i in range(60)
                ]
            )

    assert all(r.status_code == 200 for r in asyncio.run(merges()))
    for url in urls:
        data = httpx.get(f"{url}/session", headers={"Session-ID": session_id}).json()
        assert data["data"]["session"]["data"] == {f"key{i}": i for i in range(60)}


def test_request_count_is_shared_by_every_instance(pair: tuple[Server, Server]) -> None:
    first, second = pair
    before = httpx.get(f"{first.stateless_url}/info").json()["data"]["requestCount"]
    after = httpx.get(f"{second.stateless_url}/info").json()["data"]["requestCount"]
    assert after == before + 1
    health = httpx.get(f"{first.stateless_url}/health").json()["data"]
    assert health["requestCount"] >= after


def test_concurrent_request_numbers_are_each_handed_out_once(
    pair: tuple[Server, Server],
) -> None:
    """Batched INCRBY on each instance: 300 concurrent /info get 300 distinct, gapless numbers."""
    urls = [server.stateless_url for server in pair]

    async def infos() -> list[int]:
        limits = httpx.Limits(max_connections=60)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            answers = await asyncio.gather(*[client.get(f"{urls[i % 2]}/info") for i in range(300)])
        return sorted(answer.json()["data"]["requestCount"] for answer in answers)

    numbers = asyncio.run(infos())
    assert numbers == list(range(numbers[0], numbers[0] + 300))


def test_flushdb_loses_no_session_and_no_cart(pair: tuple[Server, Server], redis_url: str) -> None:
    first, second = pair
    session_id = new_session(first.stateful_url)
    headers = {"Session-ID": session_id}
    httpx.put(f"{first.stateful_url}/session", json={"data": {"mood": "calm"}}, headers=headers)
    httpx.post(
        f"{first.stateful_url}/cart/add",
        json={"productId": "prod003", "quantity": 4},
        headers=headers,
    )
    redis.Redis.from_url(redis_url).flushdb()
    got = httpx.get(f"{second.stateful_url}/session", headers=headers)
    assert got.status_code == 200
    assert got.json()["data"]["session"]["data"] == {"mood": "calm"}
    cart = httpx.get(f"{first.stateful_url}/cart", headers=headers).json()["data"]["cart"]
    assert [(item["productId"], item["quantity"]) for item in cart["items"]] == [("prod003", 4)]
    # the session is cached again, and the live-session index is rebuilt by the warm-up
    assert redis.Redis.from_url(redis_url).exists(session_key(first.stored_key(session_id)))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if redis.Redis.from_url(redis_url).exists(MARKER):
            break
        time.sleep(0.2)
    stats = httpx.get(f"{second.stateful_url}/health").json()["data"]
    assert stats["activeSessions"] >= 1
    assert stats["activeCarts"] >= 1


def redis_errors(server: Server) -> float:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith('statebridge_store_errors_total{store="redis"}'):
            return float(line.split()[-1])
    raise AssertionError("no Redis error counter in /metrics")


def test_sessions_are_read_after_redis_forgets_its_scripts(
    pair: tuple[Server, Server], redis_url: str
) -> None:
    """A restarted Redis has no scripts loaded: the session read loads its script again."""
    first, second = pair
    session_id = new_session(first.stateful_url)
    headers = {"Session-ID": session_id}
    for server in pair:  # both instances have read through the script once
        assert httpx.get(f"{server.stateful_url}/session", headers=headers).status_code == 200
    errors_before = [redis_errors(server) for server in pair]
    redis.Redis.from_url(redis_url).script_flush()
    for server in pair:
        got = httpx.get(f"{server.stateful_url}/session", headers=headers)
        assert got.status_code == 200, got.text
        assert got.json()["data"]["session"]["id"] == session_id
    # answered from Redis, not by the PostgreSQL fallback after a Redis error
    assert [redis_errors(server) for server in pair] == errors_before
    assert httpx.get(f"{second.stateful_url}/health").json()["data"]["activeSessions"] >= 1


def test_preferences_live_in_the_users_table(
    pair: tuple[Server, Server], services_env: dict[str, str]
) -> None:
    first, _ = pair
    session_id = new_session(first.stateful_url, "user002")
    prefs = {"theme": "solarized", "language": "th"}
    response = httpx.put(
        f"{first.stateful_url}/profile/preferences",
        json={"preferences": prefs},
        headers={"Session-ID": session_id},
    )
    assert response.status_code == 200

    async def stored() -> object:
        conn = await asyncpg.connect(services_env["DATABASE_URL"])
        try:
            return await conn.fetchval("SELECT preferences::text FROM users WHERE id='user002'")
        finally:
            await conn.close()

    import json

    assert json.loads(str(asyncio.run(stored()))) == prefs


def _row_expiry(database_url: str, session_id: str) -> object:
    async def read() -> object:
        conn = await asyncpg.connect(database_url)
        try:
            key = stored_key(session_id, {"DATABASE_URL": database_url}, Path())
            return await conn.fetchval("SELECT expires_at FROM sessions WHERE id=$1", key)
        finally:
            await conn.close()

    return asyncio.run(read())


def test_postgres_expiry_is_refreshed_lazily(services_env: dict[str, str], tmp_path: Path) -> None:
    env = {**services_env, "STATEBRIDGE_SESSION_DB_REFRESH": "2"}
    server = Server(env, tmp_path).start()
    try:
        session_id = new_session(server.stateful_url)
        created = _row_expiry(services_env["DATABASE_URL"], session_id)
        time.sleep(1.0)
        httpx.get(f"{server.stateful_url}/session", headers={"Session-ID": session_id})
        assert _row_expiry(services_env["DATABASE_URL"], session_id) == created
        time.sleep(1.5)
        httpx.get(f"{server.stateful_url}/session", headers={"Session-ID": session_id})
        # written in the background, just after the answer
        deadline = time.monotonic() + 5
        while _row_expiry(services_env["DATABASE_URL"], session_id) == created:
            assert time.monotonic() < deadline, "the expiry was not refreshed"
            time.sleep(0.05)
        assert _row_expiry(services_env["DATABASE_URL"], session_id) > created  # type: ignore[operator]
    finally:
        server.stop()


def _row_versions(database_url: str, session_ids: list[str]) -> list[tuple[object, str]]:
    """Each row's expiry and the transaction that last wrote it (`xmin`)."""

    async def read() -> list[tuple[object, str]]:
        conn = await asyncpg.connect(database_url)
        try:
            keys = [stored_key(sid, {"DATABASE_URL": database_url}, Path()) for sid in session_ids]
            rows = await conn.fetch(
                "SELECT expires_at, xmin::text FROM sessions WHERE id = ANY($1)", keys
            )
            return [(row[0], row[1]) for row in rows]
        finally:
            await conn.close()

    return asyncio.run(read())


def test_expiry_refreshes_that_come_due_together_share_a_transaction(
    services_env: dict[str, str], tmp_path: Path
) -> None:
    """Sessions made together come due together: their refreshes go to PostgreSQL as a few
    transactions, not one each (which opened a burst of connections and held requests up)."""
    env = {**services_env, "STATEBRIDGE_SESSION_DB_REFRESH": "1"}
    server = Server(env, tmp_path).start()
    try:
        session_ids = [new_session(server.stateful_url) for _ in range(40)]
        before = _row_versions(services_env["DATABASE_URL"], session_ids)
        time.sleep(1.2)

        async def read_all() -> list[int]:
            async with httpx.AsyncClient(base_url=server.stateful_url) as client:
                answers = await asyncio.gather(
                    *(client.get("/session", headers={"Session-ID": sid}) for sid in session_ids)
                )
            return [answer.status_code for answer in answers]

        assert asyncio.run(read_all()) == [200] * len(session_ids)
        deadline = time.monotonic() + 5
        while True:
            after = _row_versions(services_env["DATABASE_URL"], session_ids)
            refreshed = [i for i, row in enumerate(after) if row[0] != before[i][0]]
            if len(refreshed) == len(session_ids) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert len(refreshed) == len(session_ids), "not every expiry was refreshed"
        assert all(row[0] > old[0] for row, old in zip(after, before, strict=True))  # type: ignore[operator]
        transactions = {row[1] for row in after}
        assert len(transactions) <= len(session_ids) // 4, transactions
    finally:
        server.stop()


def test_idle_sessions_expire_and_the_sweeper_removes_them(
    services_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **services_env,
        "STATEBRIDGE_SESSION_TTL": "1",
        "STATEBRIDGE_SESSION_DB_REFRESH": "1",
        "STATEBRIDGE_SWEEP_INTERVAL": "1",
    }
    server = Server(env, tmp_path).start()
    try:
        session_id = new_session(server.stateful_url)
        headers = {"Session-ID": session_id}
        httpx.post(
            f"{server.stateful_url}/cart/add", json={"productId": "prod001"}, headers=headers
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if _row_expiry(services_env["DATABASE_URL"], session_id) is None:
                break
            time.sleep(0.3)
        assert _row_expiry(services_env["DATABASE_URL"], session_id) is None
        assert httpx.get(f"{server.stateful_url}/cart", headers=headers).status_code == 401
    finally:
        server.stop()


def test_without_redis_sessions_are_served_from_postgres(
    services_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**services_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    server = Server(env, tmp_path).start()
    try:
        assert httpx.get(f"{server.stateless_url}/info").status_code == 200
        session_id = new_session(server.stateful_url)
        headers = {"Session-ID": session_id}
        assert (
            httpx.get(f"{server.stateful_url}/demonstrate/stateful", headers=headers).json()[
                "data"
            ]["visitCount"]
            == 1
        )
        assert (
            httpx.get(f"{server.stateful_url}/demonstrate/stateful", headers=headers).json()[
                "data"
            ]["visitCount"]
            == 2
        )
        assert httpx.get(f"{server.stateful_url}/health").status_code == 200
        assert server.log().count("Redis unavailable") == 1
    finally:
        server.stop()


def _tables(database_url: str) -> set[str]:
    async def read() -> set[str]:
        conn = await asyncpg.connect(database_url)
        try:
            rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            return {row["tablename"] for row in rows}
        finally:
            await conn.close()

    return asyncio.run(read())


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "statebridge", *args],
        env=clean_env(env), capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_upgrade_then_downgrade_base_leaves_an_empty_database() -> None:
    name, url = new_pg_database()
    try:
        env = {"DATABASE_URL": url}
        assert _cli("db", "upgrade", env=env).returncode == 0
        assert {"users", "products", "sessions", "shopping_carts"} <= _tables(url)
        current = _cli("db", "current", env=env)
        assert "current: 0005" in current.stdout and "up to date" in current.stdout
        assert _cli("db", "downgrade", "base", env=env).returncode == 0
        assert _tables(url) == set()
    finally:
        drop_pg_database(name)


def test_no_cached_session_outlives_a_reset_of_its_database(redis_url: str, tmp_path: Path) -> None:
    """db downgrade base, then serve --migrate on the same Redis: the old database's
    sessions, still cached in Redis, answer 401 on every session route."""
    name, url = new_pg_database()
    env = {"DATABASE_URL": url, "REDIS_URL": redis_url}
    try:
        server = Server(env, tmp_path / "before", ["--migrate"]).start()
        try:
            made = httpx.post(f"{server.stateful_url}/session", json={"userId": "user001"})
            old = made.headers["Session-ID"]
            added = httpx.post(
                f"{server.stateful_url}/cart/add",
                json={"productId": "prod001", "quantity": 2},
                headers={"Session-ID": old},
            )
            assert added.status_code == 200
        finally:
            server.stop()
        assert redis.Redis.from_url(redis_url).exists(session_key(stored_key(old, env, tmp_path)))
        assert _cli("db", "downgrade", "base", env=env).returncode == 0
        server = Server(env, tmp_path / "after", ["--migrate"]).start()
        try:
            answers = {
                f"{method} {path}": httpx.request(
                    method, f"{server.stateful_url}{path}", json=body, headers={"Session-ID": old}
                ).status_code
                for method, path, body in SESSION_ROUTES
            }
        finally:
            server.stop()
        assert answers == {route: 401 for route in answers}
        assert not redis.Redis.from_url(redis_url).exists(
            session_key(stored_key(old, env, tmp_path))
        )
    finally:
        drop_pg_database(name)


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    name, url = new_pg_database()
    try:
        result = _cli(
            "serve",
            "--port",
            str(free_port()),
            "--stateless-port",
            "0",
            "--stateful-port",
            "0",
            env={"DATABASE_URL": url},
        )
        assert result.returncode == 2
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("statebridge: database schema is at nothing")
        assert "statebridge db upgrade" in last
        assert "Traceback" not in result.stderr
    finally:
        drop_pg_database(name)


def test_the_same_migrations_run_on_sqlite(tmp_path: Path) -> None:
    env = {"STATEBRIDGE_DATA_DIR": str(tmp_path)}
    assert _cli("db", "upgrade", env=env).returncode == 0
    assert "up to date" in _cli("db", "current", env=env).stdout
    assert _cli("db", "downgrade", "base", env=env).returncode == 0
    import sqlite3

    with sqlite3.connect(tmp_path / "statebridge.db") as conn:
        names = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    assert names == set()
