"""REDIS_URL through Sentinel and to a Redis Cluster, with two `statebridge serve` instances
on private topologies (tests/support/redis_topologies.py).

For each form: sessions, carts and catalog changes made through one instance are seen
through the other; then the master (Sentinel) or a primary (Cluster) is SIGKILLed while 20
sessions add to their carts through both instances, and every add that was answered 200 is
in the cart afterwards and every session answers its last acknowledged data (a ledger).
The failover time printed is from the kill until a write to Redis succeeds again (a probe of
its own, beside the load). And a session write the replica missed (it was stopped) is not
read back stale after the replica is promoted."""

from __future__ import annotations

import collections
import contextlib
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

from statebridge.stores.sessions.redis import bucket_of, live_key, session_key
from tests.support.databases import drop_pg_database, new_pg_database
from tests.support.redis_topologies import (
    REDIS_DOWN,
    SERVICE,
    Node,
    PrivateCluster,
    PrivateSentinelSet,
    topology,
)
from tests.support.servers import Server, stored_key
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.scaleout, pytest.mark.services]

KINDS = ["sentinel", "cluster"]
USER = "user002"
PRODUCTS = ["prod001", "prod002", "prod003"]
SESSIONS = 20
LOAD_SECONDS = 10.0
KILL_AFTER = 3.0
# what the session scripts call inside Redis (INFO commandstats counts those too)
INSIDE_SCRIPTS = {"hmget", "hset", "pexpireat", "zadd", "hgetall", "hexists", "hget", "del",
                  "pexpire", "zrem"}  # fmt: skip
HITS = re.compile(r'statebridge_cache_requests_total\{cache="(\w+)",result="hit"\} (\d+)')


@pytest.fixture
def database() -> Iterator[str]:
    try:
        name, url = new_pg_database()
    except Exception as exc:
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    try:
        yield url
    finally:
        drop_pg_database(name)


@contextlib.contextmanager
def two_instances(redis_url: str, database: str, root: Path) -> Iterator[list[Server]]:
    env = {"DATABASE_URL": database, "REDIS_URL": redis_url}
    servers: list[Server] = []
    try:
        servers.append(Server(env=env, data_dir=root / "a", args=["--migrate"]).start())
        servers.append(Server(env=env, data_dir=root / "b").start())
        yield servers
    finally:
        for server in servers:
            server.stop()


@contextlib.contextmanager
def on_topology(
    kind: str, database: str, root: Path
) -> Iterator[tuple[PrivateSentinelSet | PrivateCluster, list[Server], httpx.Client]]:
    """A private Redis topology of this kind, two instances on it, and a client."""
    with (
        topology(kind) as top,
        two_instances(top.url, database, root) as servers,
        httpx.Client(timeout=10) as client,
    ):
        yield top, servers, client


def cache_hits(client: httpx.Client, server: Server, cache: str) -> int:
    found = dict(HITS.findall(client.get(f"{server.url}/metrics").text))
    return int(found.get(cache, 0))


def new_session(client: httpx.Client, server: Server) -> str:
    answer = client.post(f"{server.stateful_url}/session", json={"userId": USER})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["data"]["session"]["id"])


def cart(client: httpx.Client, server: Server, session: str) -> dict[str, int]:
    answer = client.get(f"{server.stateful_url}/cart", headers={"Session-ID": session})
    assert answer.status_code == 200, answer.text
    return {item["productId"]: item["quantity"] for item in answer.json()["data"]["cart"]["items"]}


def theme_of(client: httpx.Client, server: Server) -> str:
    answer = client.get(f"{server.stateless_url}/users/{USER}")
    assert answer.status_code == 200, answer.text
    return str(answer.json()["data"]["user"]["preferences"]["theme"])


def set_theme(client: httpx.Client, server: Server, session: str, theme: str) -> None:
    answer = client.put(
        f"{server.stateful_url}/profile/preferences",
        headers={"Session-ID": session},
        json={"preferences": {"theme": theme, "language": "en"}},
    )
    assert answer.status_code == 200, answer.text


def catalog_change_reaches(client: httpx.Client, servers: list[Server], session: str) -> None:
    """A preference saved through one instance is answered by the other at once, from its
    cache (its catalog hits grow)."""
    writer, reader = servers
    theme_of(client, reader)  # the reader caches the catalog
    before = cache_hits(client, reader, "catalog")
    theme = f"t-{uuid.uuid4().hex[:6]}"
    set_theme(client, writer, session, theme)
    assert theme_of(client, reader) == theme
    assert theme_of(client, reader) == theme
    assert cache_hits(client, reader, "catalog") > before, "the reader's cache was not used"


def catalog_subscribers(top: PrivateSentinelSet | PrivateCluster) -> int:
    count = 0
    for node in top.data_nodes():
        if node.alive:
            with contextlib.suppress(redis.RedisError):
                clients = node.client().client_list(_type="pubsub")
                count += sum(1 for c in clients if c["name"].startswith("statebridge-catalog"))
    return count


@pytest.mark.parametrize("kind", KINDS)
def test_two_instances_share_sessions_carts_and_the_catalog(
    kind: str, database: str, tmp_path: Path
) -> None:
    with on_topology(kind, database, tmp_path) as (top, servers, client):
        first, second = servers
        sessions = [new_session(client, servers[i % 2]) for i in range(24)]
        for number, session in enumerate(sessions):
            answer = client.put(
                f"{first.stateful_url}/session",
                headers={"Session-ID": session},
                json={"data": {"n": number}},
            )
            assert answer.status_code == 200, answer.text
            added = client.post(
                f"{second.stateful_url}/cart/add",
                headers={"Session-ID": session},
                json={"productId": "prod002", "quantity": number + 1},
            )
            assert added.status_code == 200, added.text
        hits = cache_hits(client, second, "sessions")
        for number, session in enumerate(sessions):
            seen = client.get(f"{second.stateful_url}/session", headers={"Session-ID": session})
            assert seen.json()["data"]["session"]["data"] == {"n": number}
            assert cart(client, first, session) == {"prod002": number + 1}
        assert cache_hits(client, second, "sessions") >= hits + len(sessions)
        catalog_change_reaches(client, servers, sessions[0])
        catalog_change_reaches(client, servers[::-1], sessions[0])
        if isinstance(top, PrivateCluster):  # the sessions are spread over every primary
            held = {
                node.port: sum(1 for _ in node.client().scan_iter(match="session:*"))
                for node in top.primaries()
            }
            assert len(held) == 3 and all(held.values()), held
            assert sum(held.values()) == len(sessions), held
        # every master that took session writes was asked to confirm them with a replica
        masters = top.primaries() if isinstance(top, PrivateCluster) else [top.master]
        for node in masters:
            stats = node.client().info("commandstats")
            assert stats.get("cmdstat_wait", {}).get("calls", 0) > 0, (node.port, stats)
        # every Redis forgets the scripts (as after a restart): they are loaded again, and
        # reads that arrive together (one pipeline of EVALSHAs) are still answered from Redis
        for node in top.data_nodes():
            node.client().script_flush()
        hits = cache_hits(client, second, "sessions")
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda session: client.get(
                        f"{second.stateful_url}/session", headers={"Session-ID": session}
                    ),
                    sessions,
                )
            )
        assert [a.json()["data"]["session"]["data"]["n"] for a in answers] == list(
            range(len(sessions))
        )
        assert cache_hits(client, second, "sessions") >= hits + len(sessions)


def probe_write(top: PrivateSentinelSet | PrivateCluster, key: str) -> bool:
    """One SET through a fresh client, as the application would reach Redis now."""
    try:
        if isinstance(top, PrivateSentinelSet):
            hosts = [("127.0.0.1", node.port) for node in top.sentinels]
            sentinel = Sentinel(hosts, socket_timeout=0.5, socket_connect_timeout=0.5)
            master = sentinel.master_for(SERVICE, socket_timeout=0.5, socket_connect_timeout=0.5)
            master.set(key, "1")
            master.close()
        else:
            nodes = [ClusterNode("127.0.0.1", node.port) for node in top.nodes if node.alive]
            cluster = RedisCluster(
                startup_nodes=nodes, socket_timeout=0.5, socket_connect_timeout=0.5
            )
            cluster.set(key, "1")
            cluster.close()
    except (redis.RedisError, OSError):
        return False
    return True


def kill_the_master(top: PrivateSentinelSet | PrivateCluster) -> str:
    """SIGKILL the master (Sentinel) or the primary holding the first live index (Cluster);
    returns a key that node held, for the probe."""
    if isinstance(top, PrivateSentinelSet):
        victim = next(n for n in top.data_nodes() if n.port == top.master_port())
        victim.kill()
        return "probe"
    nodes = [ClusterNode("127.0.0.1", node.port) for node in top.nodes]
    cluster = RedisCluster(startup_nodes=nodes)
    key = "probe:{0}"  # the slot of bucket 0's sessions and live index
    port = cluster.get_node_from_key(live_key(0)).port
    cluster.close()
    next(node for node in top.nodes if node.port == port).kill()
    return key


@pytest.mark.parametrize("kind", KINDS)
def test_a_failover_under_cart_load_loses_no_acknowledged_add(
    kind: str, database: str, tmp_path: Path
) -> None:
    with on_topology(kind, database, tmp_path) as (top, servers, client):
        sessions = [new_session(client, servers[i % 2]) for i in range(SESSIONS)]
        acked: collections.Counter[tuple[str, str]] = collections.Counter()
        unsure: collections.Counter[tuple[str, str]] = collections.Counter()
        outcomes: collections.Counter[str] = collections.Counter()
        last_data: dict[str, int] = {}  # the last acknowledged session data of each session
        lock = threading.Lock()
        stop = threading.Event()

        def load(session: str, offset: int) -> None:
            with httpx.Client(timeout=5) as own:
                step = offset
                while not stop.is_set():
                    step += 1
                    server = servers[step % 2]
                    headers = {"Session-ID": session}
                    product = PRODUCTS[step % len(PRODUCTS)]
                    try:
                        if step % 5 == 0:
                            answer = own.put(
                                f"{server.stateful_url}/session",
                                headers=headers,
                                json={"data": {"step": step}},
                            )
                        else:
                            answer = own.post(
                                f"{server.stateful_url}/cart/add",
                                headers=headers,
                                json={"productId": product, "quantity": 1},
                            )
                        status = str(answer.status_code)
                    except httpx.HTTPError as exc:
                        status = type(exc).__name__
                    with lock:
                        outcomes[status] += 1
                        if step % 5 == 0:
                            if status == "200":
                                last_data[session] = step
                        elif status == "200":
                            acked[(session, product)] += 1
                        else:
                            unsure[(session, product)] += 1

        threads = [
            threading.Thread(target=load, args=(session, number * 7))
            for number, session in enumerate(sessions)
        ]
        for thread in threads:
            thread.start()
        try:
            time.sleep(KILL_AFTER)
            key = kill_the_master(top)
            killed = time.monotonic()
            wait_until(
                lambda: probe_write(top, key), "a write to Redis after the kill", 30, REDIS_DOWN
            )
            failover = time.monotonic() - killed
            time.sleep(max(0.0, LOAD_SECONDS - KILL_AFTER - failover))
        finally:
            stop.set()
            for thread in threads:
                thread.join(15)

        lost = extra = stale = 0
        for session in sessions:
            held = cart(client, servers[0], session)
            for product in PRODUCTS:
                count = held.get(product, 0)
                lost += max(0, acked[(session, product)] - count)
                extra += max(0, count - acked[(session, product)] - unsure[(session, product)])
            for server in servers:
                seen = client.get(f"{server.stateful_url}/session", headers={"Session-ID": session})
                data = seen.json()["data"]["session"]["data"]
                if session in last_data and data.get("step", -1) < last_data[session]:
                    stale += 1
        errors = {status: n for status, n in outcomes.items() if status != "200"}
        print(
            f"\n{kind}: {sum(outcomes.values())} requests, {sum(acked.values())} adds acked, "
            f"lost {lost}, stale session reads {stale}, other answers {errors}, "
            f"failover {failover:.2f} s"
        )
        assert lost == 0 and extra == 0, (lost, extra)
        assert stale == 0, f"{stale} session reads older than their last acknowledged write"
        assert not [status for status in errors if status.startswith("5")], errors
        assert sum(acked.values()) > 100, outcomes

        # Redis is used again: sessions answered from it, the catalog subscription back
        wait_until(
            lambda: catalog_subscribers(top) >= 2, "the catalog resubscribed", 10, REDIS_DOWN
        )
        hits = [cache_hits(client, server, "sessions") for server in servers]
        for session in sessions:
            for server in servers:
                client.get(f"{server.stateful_url}/session", headers={"Session-ID": session})
        after = [cache_hits(client, server, "sessions") for server in servers]
        assert all(a > h for a, h in zip(after, hits, strict=True)), (hits, after)
        catalog_change_reaches(client, servers, sessions[0])


def put_data(client: httpx.Client, server: Server, session: str, data: dict[str, int]) -> None:
    answer = client.put(
        f"{server.stateful_url}/session", headers={"Session-ID": session}, json={"data": data}
    )
    assert answer.status_code == 200, answer.text


def session_data(client: httpx.Client, server: Server, session: str) -> object:
    answer = client.get(f"{server.stateful_url}/session", headers={"Session-ID": session})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]["session"]["data"]


def master_and_replica(top: PrivateSentinelSet | PrivateCluster, key: str) -> tuple[Node, Node]:
    """The master holding `key` and its replica."""
    if isinstance(top, PrivateSentinelSet):
        return top.master, top.replica
    nodes = [ClusterNode("127.0.0.1", node.port) for node in top.nodes]
    cluster = RedisCluster(startup_nodes=nodes)
    port = cluster.get_node_from_key(key).port
    cluster.close()
    master = next(node for node in top.nodes if node.port == port)
    replica_port = int(master.client().info("replication")["slave0"]["port"])
    return master, next(node for node in top.nodes if node.port == replica_port)


def reader_of(node: Node) -> redis.Redis:
    """One connection to `node` that may read a cluster replica's keys (READONLY)."""
    client = redis.Redis(host="127.0.0.1", port=node.port, single_connection_client=True)
    with contextlib.suppress(redis.ResponseError):  # not in cluster mode
        client.execute_command("READONLY")
    return client


@pytest.mark.parametrize("kind", KINDS)
def test_a_write_the_replica_missed_is_not_read_back_stale_after_a_failover(
    kind: str, database: str, tmp_path: Path
) -> None:
    """The replica stops taking the replication stream (SIGSTOP, then 32 MB of other writes
    fill the link, so what follows stays in the master's output buffer); a session write is
    still acknowledged, its key dropped from the master since no replica confirmed it; the
    master is SIGKILLed and the replica, holding the session's previous snapshot, promoted.
    Both instances then answer the last acknowledged data."""
    with on_topology(kind, database, tmp_path) as (top, (writer, reader), client):
        session = new_session(client, writer)
        stored = stored_key(session, {"DATABASE_URL": database}, tmp_path)
        key = session_key(stored)
        filler = f"filler:{{{bucket_of(stored)}}}"  # on the session's master
        master_node, replica_node = master_and_replica(top, key)
        put_data(client, writer, session, {"v": 1})
        replica = reader_of(replica_node)
        # the write was answered once the replica had it (WAIT)
        assert replica.hget(key, "data") == b'{"v":1}'
        assert session_data(client, reader, session) == {"v": 1}

        master = master_node.client()
        assert replica_node.process is not None
        os.kill(replica_node.process.pid, signal.SIGSTOP)
        try:
            master.set(filler, b"x" * (32 << 20))
            put_data(client, writer, session, {"v": 2})
            assert master.exists(key) == 0, "the unconfirmed snapshot was kept on the master"
            master_node.kill()
        finally:
            os.kill(replica_node.process.pid, signal.SIGCONT)
        wait_until(
            lambda: replica.info("replication")["role"] == "master",
            "the replica promoted",
            30,
            REDIS_DOWN,
        )
        assert replica.exists(filler) == 0, "the replica took the stream after all"
        # the writer drops what it could not confirm from the new master, unasked
        wait_until(lambda: replica.exists(key) == 0, "the old snapshot dropped", 30, REDIS_DOWN)
        assert session_data(client, reader, session) == {"v": 2}
        assert session_data(client, writer, session) == {"v": 2}
        replica.close()
        master.close()


def test_redis_commands_and_bytes_per_request_and_per_live_session(
    database: str, tmp_path: Path
) -> None:
    """What one instance asks of Redis, per request sent one at a time (nothing coalesced),
    and what a live session holds there: printed as the table in docs/scaling.md."""
    from tests.support.private_services import PrivateRedis

    private = PrivateRedis(tmp_path / "redis").start()
    admin = redis.Redis.from_url(private.url)
    count = 200
    rows: list[tuple[str, float, str, float, float]] = []
    try:
        env = {"DATABASE_URL": database, "REDIS_URL": private.url}
        server = Server(env=env, data_dir=tmp_path / "a", args=["--migrate"]).start()
        try:
            with httpx.Client(timeout=10) as client:
                sessions: list[str] = []

                def create(_: int) -> httpx.Response:
                    answer = client.post(f"{server.stateful_url}/session", json={"userId": USER})
                    sessions.append(answer.json()["data"]["session"]["id"])
                    return answer

                def call(method: str, path: str, **body: object) -> Callable[[int], httpx.Response]:
                    def send(i: int) -> httpx.Response:
                        headers = {"Session-ID": sessions[i]}
                        return client.request(method, f"{server.stateful_url}{path}",
                                              headers=headers, **body)  # type: ignore[arg-type]  # fmt: skip

                    return send

                phases = {
                    "POST /session": create,
                    "GET /session": call("GET", "/session"),
                    "PUT /session": call("PUT", "/session", json={"data": {"theme": "dark"}}),
                    "POST /cart/add": call("POST", "/cart/add", json={"productId": "prod001"}),
                    "GET /cart": call("GET", "/cart"),
                }
                for name, send in phases.items():
                    admin.config_resetstat()
                    for i in range(count):
                        assert send(i).status_code == 200
                    stats = admin.info("stats")
                    calls = {
                        key.removeprefix("cmdstat_"): value["calls"]
                        for key, value in admin.info("commandstats").items()
                        if key not in ("cmdstat_config|resetstat", "cmdstat_info")
                    }
                    sent = sum(n for k, n in calls.items() if k not in INSIDE_SCRIPTS) / count
                    mix = ", ".join(f"{k} {v / count:.2f}" for k, v in sorted(calls.items()))
                    into = stats["total_net_input_bytes"] / count
                    out = stats["total_net_output_bytes"] / count
                    rows.append((name, sent, mix, into, out))
            keys = [admin.execute_command("MEMORY USAGE", k) for k in admin.scan_iter("session:*")]
            index = sum(admin.memory_usage(key) or 0 for key in admin.scan_iter("sessions:live:*"))
        finally:
            server.stop()
    finally:
        admin.close()
        private.stop()
    print("\n| request | commands sent | commands run (with those in scripts) | in, B | out, B |")
    print("|---|---|---|---|---|")
    for name, per, mix, into, out in rows:
        print(f"| {name} | {per:.2f} | {mix} | {into:.0f} | {out:.0f} |")
    session_bytes = sum(keys) / len(keys)
    print(
        f"\nper live session: hash {session_bytes:.0f} B (MEMORY USAGE, {len(keys)} sessions),"
        f" live index {index / len(keys):.0f} B"
    )
    assert len(keys) == count
    by_name = {row[0]: row[1] for row in rows}
    assert by_name["GET /session"] <= 1.1, rows  # one EVALSHA (TOUCH)
    assert session_bytes < 4096
