"""DATABASE_URL through a real PgBouncer in transaction mode (STATEBRIDGE_DATABASE_POOLER=
transaction): a private pgbouncer on a free loopback port in front of a fresh database on the
shared PostgreSQL. Schema changes refuse the pooler and go to DATABASE_DIRECT_URL; two
instances serve sessions, carts, counters and the catalog through it under load, losing no
acknowledged cart add, on no more PostgreSQL connections than the pooler's pool."""

from __future__ import annotations

import asyncio
import collections
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.commands import report, statebridge
from tests.support.databases import PG_ADMIN_URL, drop_pg_database, new_pg_database
from tests.support.envelope import assert_envelope
from tests.support.private_services import PrivatePgBouncer
from tests.support.recordings import PHASE1
from tests.support.servers import Server

pytestmark = [pytest.mark.services, pytest.mark.pgbouncer]

POOL_SIZE = 4  # PgBouncer's server connections to the database, at most


@pytest.fixture(scope="module")
def pooled() -> Iterator[dict[str, str]]:
    """The environment of an instance behind the pooler: a fresh database, upgraded through
    DATABASE_DIRECT_URL, and a private pgbouncer in front of it."""
    try:
        name, direct = new_pg_database()
    except Exception as exc:
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    root = Path(tempfile.mkdtemp(prefix="sb-pgbouncer-"))
    server_port = int(PG_ADMIN_URL.rsplit(":", 1)[1].split("/")[0])
    bouncer = PrivatePgBouncer(root, server_port, pool_size=POOL_SIZE)
    try:
        bouncer.start()
        yield {
            "DATABASE_URL": bouncer.url(name),
            "STATEBRIDGE_DATABASE_POOLER": "transaction",
            "DIRECT": direct,
            "NAME": name,
            "BOUNCER_PORT": str(bouncer.port),
        }
    finally:
        bouncer.stop()
        drop_pg_database(name)
        shutil.rmtree(root, ignore_errors=True)


def app_env(pooled: dict[str, str], **extra: str) -> dict[str, str]:
    keep = ("DATABASE_URL", "STATEBRIDGE_DATABASE_POOLER")
    return {**{key: pooled[key] for key in keep}, **extra}


@pytest.fixture(scope="module")
def upgraded(pooled: dict[str, str]) -> dict[str, str]:
    """`db upgrade` refuses the pooler with one line naming DATABASE_DIRECT_URL, and upgrades
    the database through that URL when it is given."""
    refused = statebridge(app_env(pooled), "db", "upgrade")
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "DATABASE_DIRECT_URL" in lines[0], refused.stderr
    assert "transaction pooler" in lines[0]
    done = statebridge(app_env(pooled, DATABASE_DIRECT_URL=pooled["DIRECT"]), "db", "upgrade")
    assert done.returncode == 0, done.stderr
    return pooled


def test_db_upgrade_refuses_the_pooler_and_uses_the_direct_url(upgraded: dict[str, str]) -> None:
    current = statebridge(app_env(upgraded), "db", "current", "--json")
    assert current.returncode == 0, current.stderr
    assert '"up_to_date": true' in current.stdout


def test_serve_migrate_behind_the_pooler_needs_the_direct_url(
    pooled: dict[str, str], tmp_path: Path
) -> None:
    name, _ = new_pg_database()
    try:
        env = {**app_env(pooled), "DATABASE_URL": pooled["DATABASE_URL"].rsplit("/", 1)[0]}
        env["DATABASE_URL"] += f"/{name}"
        server = Server(env, tmp_path, args=["--migrate"])
        with pytest.raises(RuntimeError, match="DATABASE_DIRECT_URL"):
            server.start(timeout=30)
    finally:
        drop_pg_database(name)


def test_migrate_data_through_the_pooler(upgraded: dict[str, str]) -> None:
    files = ("--users", str(PHASE1 / "users.json"), "--products", str(PHASE1 / "products.json"))
    data = report(app_env(upgraded), "migrate", "data", *files)
    for table in data["tables"]:
        assert table["verification"]["ok"], table


@pytest.fixture(scope="module")
def pair(
    upgraded: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Server]]:
    """Two instances behind the pooler, sessions and counters in PostgreSQL, no Redis and no
    direct URL: the catalog cache is off, every catalog read goes through the pooler too."""
    servers = []
    try:
        for index in range(2):
            directory = tmp_path_factory.mktemp(f"pooled-{index}")
            servers.append(Server(app_env(upgraded), directory).start(timeout=60))
        yield servers
    finally:
        for server in servers:
            server.stop()


def backend_count(pooled: dict[str, str]) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=10)
        try:
            value = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", pooled["NAME"]
            )
        finally:
            await conn.close()
        return int(value)

    return asyncio.run(count())


async def cart_load(
    servers: list[Server], pooled: dict[str, str], sessions: int, adds: int, clients: int
) -> tuple[dict[tuple[str, str], int], list[str], int]:
    """Cart adds spread over both instances by `clients` concurrent clients; the ledger of
    acknowledged adds, the failures, and the most backends PostgreSQL had for the database."""
    acked: dict[tuple[str, str], int] = collections.Counter()
    failures: list[str] = []
    products = ["prod001", "prod002", "prod003"]
    async with httpx.AsyncClient(timeout=30) as client:
        ids = []
        for index in range(sessions):
            url = servers[index % 2].url
            answer = await client.post(f"{url}/api/stateful/session", json={"userId": "user001"})
            assert answer.status_code == 200, answer.text
            ids.append(answer.headers["Session-ID"])
        queue: asyncio.Queue[int] = asyncio.Queue()
        for number in range(adds):
            queue.put_nowait(number)

        async def worker() -> None:
            while not queue.empty():
                number = queue.get_nowait()
                session, product = ids[number % sessions], products[number % 3]
                url = servers[number % 2].url
                try:
                    answer = await client.post(
                        f"{url}/api/stateful/cart/add",
                        json={"productId": product, "quantity": 1},
                        headers={"Session-ID": session},
                    )
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if answer.status_code == 200:
                    acked[(session, product)] += 1
                else:
                    failures.append(f"{answer.status_code} {answer.text[:200]}")

        most = 0
        running = asyncio.gather(*(worker() for _ in range(clients)))
        while not running.done():
            most = max(most, await asyncio.to_thread(backend_count, pooled))
            await asyncio.sleep(0.05)
        await running
    return acked, failures, most


def test_two_instances_under_cart_load_lose_nothing_on_bounded_connections(
    pair: list[Server], upgraded: dict[str, str]
) -> None:
    acked, failures, most = asyncio.run(cart_load(pair, upgraded, 12, 600, 24))
    assert failures == []
    assert sum(acked.values()) == 600
    # every acknowledged add is in the cart, read back through the other instance
    with httpx.Client(timeout=30) as client:
        sessions = sorted({session for session, _ in acked})
        for index, session in enumerate(sessions):
            url = pair[(index + 1) % 2].url
            cart = assert_envelope(
                client.get(f"{url}/api/stateful/cart", headers={"Session-ID": session}), 200
            )
            found = {item["productId"]: item["quantity"] for item in cart["data"]["cart"]["items"]}
            wanted = {product: n for (owner, product), n in acked.items() if owner == session}
            assert found == wanted
    # 2 instances x (10 asyncpg + 10 SQLAlchemy) client connections, POOL_SIZE server ones
    assert 1 <= most <= POOL_SIZE
    bouncer = PrivatePgBouncer(Path("."), 0, port=int(upgraded["BOUNCER_PORT"]))
    (pool,) = bouncer.pools(upgraded["NAME"])
    assert pool["pool_mode"] == "transaction"
    servers_now = sum(int(pool[key]) for key in ("sv_active", "sv_idle", "sv_used", "sv_login"))
    assert servers_now <= POOL_SIZE


def test_counters_sessions_and_catalog_through_the_pooler(pair: list[Server]) -> None:
    with httpx.Client(timeout=30) as client:
        counts = []
        for index in range(10):
            info = assert_envelope(client.get(f"{pair[index % 2].url}/info"), 200)
            counts.append(info["data"]["requestCount"])
        assert counts == list(range(counts[0], counts[0] + 10)), counts
        created = client.post(f"{pair[0].url}/api/stateful/session", json={"userId": "user002"})
        headers = {"Session-ID": assert_envelope(created, 200) and created.headers["Session-ID"]}
        put = client.put(
            f"{pair[1].url}/api/stateful/session", json={"data": {"k": 1}}, headers=headers
        )
        assert_envelope(put, 200)
        session = assert_envelope(
            client.get(f"{pair[0].url}/api/stateful/session", headers=headers)
        )
        assert session["data"]["session"]["data"]["k"] == 1
        theme = f"theme-{id(headers)}"
        changed = client.put(
            f"{pair[0].url}/api/stateful/profile/preferences",
            json={"preferences": {"theme": theme}},
            headers=headers,
        )
        assert_envelope(changed, 200)
        users: list[dict[str, Any]] = assert_envelope(client.get(f"{pair[1].url}/users"))["data"][
            "users"
        ]
        assert {u["id"]: u["preferences"].get("theme") for u in users}["user002"] == theme
    assert "catalog cache off" in pair[0].log()


def test_the_catalog_listens_on_the_direct_url(upgraded: dict[str, str], tmp_path: Path) -> None:
    """With DATABASE_DIRECT_URL the catalog cache stays on behind the pooler: each instance
    LISTENs on PostgreSQL itself, and a change made on one is seen by the other well within
    the 30 s a cached copy may otherwise live."""
    env = app_env(upgraded, DATABASE_DIRECT_URL=upgraded["DIRECT"])
    servers = [Server(env, tmp_path / name).start(timeout=60) for name in ("a", "b")]
    try:
        listening = asyncio.run(listeners(upgraded["DIRECT"]))
        assert listening >= 2
        with httpx.Client(timeout=30) as client:
            created = client.post(
                f"{servers[0].url}/api/stateful/session", json={"userId": "user002"}
            )
            headers = {"Session-ID": created.headers["Session-ID"]}
            for step in range(3):
                reader = servers[(step + 1) % 2]
                client.get(f"{reader.url}/users")  # the reader's copy is loaded
                theme = f"direct-{step}-{id(created)}"
                changed = client.put(
                    f"{servers[step % 2].url}/api/stateful/profile/preferences",
                    json={"preferences": {"theme": theme}},
                    headers=headers,
                )
                assert_envelope(changed, 200)
                deadline = time.monotonic() + 2.0
                while themes(client, reader)["user002"] != theme:
                    assert time.monotonic() < deadline, f"step {step}: the change was not heard"
                    time.sleep(0.05)
        for server in servers:
            assert "catalog cache off" not in server.log()
    finally:
        for server in servers:
            server.stop()


async def listeners(url: str) -> int:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        value = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE 'LISTEN%'"
        )
    finally:
        await conn.close()
    return int(value)


def themes(client: httpx.Client, server: Server) -> dict[str, Any]:
    users = assert_envelope(client.get(f"{server.url}/users"), 200)["data"]["users"]
    return {user["id"]: user["preferences"].get("theme") for user in users}
