"""Two statebridge containers from the image, on the host's network, behind the project's own
nginx configuration (rendered by `statebridge deploy nginx`, run by the host's nginx on free
loopback ports): the first migrates the database (STATEBRIDGE_MIGRATE=1), the second does
not. Both share a fresh database on the machine's PostgreSQL and this run's Redis db."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from statebridge.client import StatefulClient, StatelessClient
from tests.support.databases import drop_pg_database, new_pg_database
from tests.support.docker import Replica, docker
from tests.support.nginx import NGINX, Proxy, new_certs
from tests.support.recordings import TRANSCRIPT
from tests.support.transcript import SESSION_ROW, compare, replay_row, reset_seed_preferences

if NGINX is None:
    pytest.skip(
        "nginx is not installed (scripts/ci-install-nginx.sh installs it)", allow_module_level=True
    )


@pytest.fixture(scope="module")
def replicas(image: str, redis_url: str) -> Iterator[list[Replica]]:
    try:
        name, database_url = new_pg_database()
    except Exception as exc:
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    first = Replica(image, {**env, "STATEBRIDGE_MIGRATE": "1"})
    second = Replica(image, env)
    try:
        first.start().wait_ready()
        second.start().wait_ready()  # the schema is there: it starts without migrating
        yield [first, second]
    finally:
        for replica in (first, second):
            replica.remove()
        drop_pg_database(name)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return new_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def proxy(
    replicas: list[Replica], certs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    """The shipped configuration, limits included (10 r/s, burst 20)."""
    running = Proxy(
        prefix=tmp_path_factory.mktemp("nginx"),
        upstreams=[f"127.0.0.1:{replica.port}" for replica in replicas],
        certs=certs,
    ).start()
    yield running
    running.stop()


def test_both_replicas_share_sessions_carts_and_the_counter(
    proxy: Proxy, replicas: list[Replica], certs: Path
) -> None:
    ids = {replica.instance_id() for replica in replicas}
    assert len(ids) == 2
    with httpx.Client(
        verify=ssl.create_default_context(cafile=certs / "cert.pem"), timeout=30
    ) as client:
        base = f"{proxy.https_url}/api/stateful"
        created = client.post(f"{base}/session", json={"userId": "user001"})
        assert created.status_code == 200, created.text
        headers = {"Session-ID": created.headers["session-id"]}
        served_by = {created.headers["x-instance-id"]}
        for step in range(6):
            added = client.post(
                f"{base}/cart/add", json={"productId": "prod001", "quantity": 1}, headers=headers
            )
            updated = client.put(f"{base}/session", json={"data": {"step": step}}, headers=headers)
            assert (added.status_code, updated.status_code) == (200, 200), added.text
            served_by |= {added.headers["x-instance-id"], updated.headers["x-instance-id"]}
        assert served_by == ids  # round-robin over both, no stickiness
        cart = client.get(f"{base}/cart", headers=headers).json()["data"]["cart"]
        assert [(i["productId"], i["quantity"]) for i in cart["items"]] == [("prod001", 6)]
        session = client.get(f"{base}/session", headers=headers).json()["data"]["session"]
        assert session["data"]["step"] == 5

        counts, counted_by = [], set()
        for _ in range(6):
            info = client.get(f"{proxy.https_url}/api/stateless/info")
            counts.append(info.json()["data"]["requestCount"])
            counted_by.add(info.headers["x-instance-id"])
        assert counted_by == ids
        assert counts == list(range(counts[0], counts[0] + 6)), counts  # one counter for both

        # the rest of the configuration: plain HTTP redirects, Phase 1's two ports
        redirect = client.get(f"{proxy.http_url}/health")
        assert redirect.status_code == 301
        assert redirect.headers["location"].startswith("https://")
        stateless = client.get(f"{proxy.stateless_url}/health").json()
        stateful = client.get(f"{proxy.stateful_url}/health").json()
        assert stateless["message"] == "Stateless server is healthy"
        assert stateful["message"] == "Stateful server is healthy"


def test_phase1_transcript_passes_through_nginx(proxy: Proxy, replicas: list[Replica]) -> None:
    import json

    rows: list[dict[str, Any]] = json.loads(TRANSCRIPT.read_text("utf-8"))
    modes = {
        "Phase 1 ports": {"sl": proxy.stateless_url, "sf": proxy.stateful_url},
        "combined HTTPS": {
            "sl": f"{proxy.https_url}/api/stateless",
            "sf": f"{proxy.https_url}/api/stateful",
        },
    }
    with httpx.Client(verify=False, timeout=30) as http:
        for mode, urls in modes.items():
            reset_seed_preferences(http, urls["sf"])
            session_id: str | None = None
            failures, served_by = [], set()
            for index, row in enumerate(rows):
                response = replay_row(http, urls[row["server"]], row, session_id)
                served_by.add(response.headers.get("x-instance-id"))
                if index == SESSION_ROW:
                    session_id = response.headers.get("session-id")
                failures += [f"row {index} {row['method']} {row['path']}: {p}"
                             for p in compare(row, response)]  # fmt: skip
            assert not failures, f"{mode}:\n" + "\n".join(failures)
            assert len(served_by - {None}) == 2, served_by
            print(f"\n{len(rows)}/{len(rows)} rows match through nginx ({mode})")


def test_python_clients_work_through_nginx(proxy: Proxy, certs: Path) -> None:
    async def walk() -> set[str | None]:
        seen: set[str | None] = set()
        async with StatelessClient(proxy.stateless_url) as stateless:
            assert (await stateless.health_check())["message"] == "Stateless server is healthy"
            users = (await stateless.get_users())["data"]
            assert users
            seen.add(stateless.last_exchange.instance_id if stateless.last_exchange else None)
        secure = httpx.AsyncHTTPTransport(
            verify=ssl.create_default_context(cafile=certs / "cert.pem")
        )
        base = f"{proxy.https_url}/api/stateful"
        async with StatefulClient(base, transport=secure) as stateful:
            await stateful.create_session("user002")
            for _ in range(3):
                await stateful.add_to_cart("prod003", 2)
                seen.add(stateful.last_exchange.instance_id if stateful.last_exchange else None)
            items = (await stateful.get_cart())["data"]["cart"]["items"]
            assert [(i["productId"], i["quantity"]) for i in items] == [("prod003", 6)]
            await stateful.delete_session()
        return seen

    seen = asyncio.run(walk())
    assert len(seen - {None}) == 2, seen


def test_docker_stop_of_a_replica_under_load_loses_nothing(
    replicas: list[Replica], certs: Path, tmp_path: Path
) -> None:
    """About 10 s of requests through nginx (limits raised, as for a load test); `docker
    stop` of the second replica after 3 s: no 5xx, no broken request, the first replica
    takes the traffic. The stopped replica is started again afterwards."""
    survivor, victim = replicas
    survivor_id, victim_id = survivor.instance_id(), victim.instance_id()
    loaded = Proxy(
        prefix=tmp_path / "nginx",
        upstreams=[f"127.0.0.1:{replica.port}" for replica in replicas],
        certs=certs,
        limits=["--rate", "5000r/s", "--burst", "5000"],
    ).start()
    try:
        base = f"{loaded.https_url}/api/stateful"
        with httpx.Client(verify=False, timeout=30) as setup:
            created = setup.post(f"{base}/session", json={"userId": "user002"})
        assert created.status_code == 200, created.text
        headers = {"Session-ID": created.headers["session-id"]}
        deadline = time.monotonic() + 10
        stop_at = time.monotonic() + 3

        def load(kind: str) -> list[tuple[float, int, str]]:
            outcomes: list[tuple[float, int, str]] = []
            with httpx.Client(verify=False, timeout=30) as client:
                for _ in range(3000):  # bounded, whatever happens
                    if time.monotonic() > deadline:
                        break
                    try:
                        if kind == "add":
                            answer = client.post(
                                f"{base}/cart/add",
                                headers=headers,
                                json={"productId": "prod002", "quantity": 1},
                            )
                        else:
                            answer = client.get(f"{base}/cart", headers=headers)
                        outcomes.append(
                            (
                                time.monotonic(),
                                answer.status_code,
                                answer.headers.get("x-instance-id", ""),
                            )
                        )
                    except httpx.HTTPError as exc:
                        outcomes.append((time.monotonic(), 0, type(exc).__name__))
            return outcomes

        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(load, kind) for kind in ("add", "read", "read")]
            time.sleep(max(0.0, stop_at - time.monotonic()))
            stopped_at = time.monotonic()
            victim.stop()
            stop_took = time.monotonic() - stopped_at
            adds, *reads = [future.result() for future in futures]
        with httpx.Client(verify=False, timeout=30) as check:
            cart = check.get(f"{base}/cart", headers=headers).json()["data"]["cart"]["items"]
    finally:
        loaded.stop()
        docker("start", victim.name)
        victim.wait_ready()

    everything = adds + [outcome for loop in reads for outcome in loop]
    statuses: dict[int, int] = {}
    for _, status, _ in everything:
        statuses[status] = statuses.get(status, 0) + 1
    after = {instance for at, status, instance in everything if at > stopped_at + stop_took}
    print(
        f"\n{len(everything)} requests in ~10 s, statuses {statuses}; docker stop took "
        f"{stop_took:.1f} s; served after the stop by {after}"
    )
    assert set(statuses) == {200}, statuses  # no 5xx, no broken request
    before = {instance for at, _, instance in everything if at < stopped_at}
    assert before == {survivor_id, victim_id}
    assert after == {survivor_id}
    quantity = sum(i["quantity"] for i in cart if i["productId"] == "prod002")
    assert quantity == len(adds)  # every acknowledged add is in the cart, none twice
