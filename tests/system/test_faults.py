"""Faults: Redis stopped, restarted and flushed; PostgreSQL restarted and crashed; an instance
killed with SIGKILL under load; SIGTERM during a request.

Throughout, stateless routes keep answering; session routes answer (from PostgreSQL when
Redis is gone) or say 503 in the error envelope, never 500; the app recovers without a
restart; and nothing the server acknowledged is lost: a ledger of every acknowledged cart
add, session update and visit is checked against what the server returns afterwards.

They run on a private PostgreSQL cluster and a private Redis (tests/support/private_services.py):
the machine's shared servers are never stopped or flushed.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from statebridge.ops.faults.load import Ledger as CartLedger
from statebridge.ops.faults.load import add_to_carts
from tests.support.envelope import assert_envelope, envelope_problems
from tests.support.private_services import PrivatePostgres, PrivateRedis, private_stack
from tests.support.servers import Server
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.services]
UNAVAILABLE = "Service temporarily unavailable"
RECOVERY = 30.0  # seconds a recovery may take before the test gives up (not a speed claim)
STATELESS_ROUTES = [
    ("GET", "/random?count=3", None),
    ("POST", "/calculate", {"operation": "add", "values": [1, 2]}),
    ("GET", "/compare/stateful", None),
    ("GET", "/health/live", None),
]


@dataclass
class Ledger:
    """What the server acknowledged (2xx), and what it was asked but did not acknowledge."""

    cart: Counter[str] = field(default_factory=Counter)
    cart_unacked: Counter[str] = field(default_factory=Counter)
    data: dict[str, dict[str, int]] = field(default_factory=dict)
    visits: Counter[str] = field(default_factory=Counter)
    visits_unacked: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    writes: int = 0


def check(response: httpx.Response, ledger: Ledger, allow_503: bool) -> bool:
    """True when acknowledged. A 5xx other than an enveloped 503 fails the test at once."""
    ledger.statuses[response.status_code] += 1
    problems = envelope_problems(response)
    assert not problems, (response.request.method, response.request.url, problems)
    if response.status_code == 503:
        assert allow_503, f"503 where the service should answer: {response.text}"
        assert response.json()["message"] == UNAVAILABLE
        return False
    assert response.status_code == 200, (response.request.url, response.text[:300])
    return True


def write_round(
    client: httpx.Client, sessions: list[str], ledger: Ledger, allow_503: bool = False
) -> None:
    """For each session: add one prod001, set one new data key, visit once."""
    for session_id in sessions:
        headers = {"Session-ID": session_id}
        ledger.writes += 1
        key = f"w{ledger.writes}"
        response = client.post(
            "/api/stateful/cart/add", json={"productId": "prod001"}, headers=headers
        )
        if check(response, ledger, allow_503):
            ledger.cart[session_id] += 1
        else:
            ledger.cart_unacked[session_id] += 1
        response = client.put(
            "/api/stateful/session", json={"data": {key: ledger.writes}}, headers=headers
        )
        if check(response, ledger, allow_503):
            ledger.data.setdefault(session_id, {})[key] = ledger.writes
        response = client.get("/api/stateful/demonstrate/stateful", headers=headers)
        if check(response, ledger, allow_503):
            ledger.visits[session_id] += 1
            assert response.json()["data"]["visitCount"] >= ledger.visits[session_id]
        else:
            ledger.visits_unacked[session_id] += 1


def verify(client: httpx.Client, sessions: list[str], ledger: Ledger) -> None:
    """Every acknowledged write is there; nothing beyond what was attempted."""
    for session_id in sessions:
        headers = {"Session-ID": session_id}
        cart = assert_envelope(client.get("/api/stateful/cart", headers=headers), 200)
        quantity = sum(item["quantity"] for item in cart["data"]["cart"]["items"])
        acked, unacked = ledger.cart[session_id], ledger.cart_unacked[session_id]
        assert acked <= quantity <= acked + unacked, (session_id, quantity, acked, unacked)
        session = assert_envelope(client.get("/api/stateful/session", headers=headers), 200)
        data = session["data"]["session"]["data"]
        for key, value in ledger.data.get(session_id, {}).items():
            assert data.get(key) == value, (session_id, key, data)
        visits = data.get("visitCount", 0)
        acked, unacked = ledger.visits[session_id], ledger.visits_unacked[session_id]
        assert acked <= visits <= acked + unacked, (session_id, visits, acked, unacked)


def new_sessions(client: httpx.Client, count: int) -> list[str]:
    sessions = []
    for index in range(count):
        user = "user001" if index % 2 == 0 else "user002"
        response = client.post("/api/stateful/session", json={"userId": user})
        assert_envelope(response, 200)
        sessions.append(response.headers["Session-ID"])
    return sessions


def stateless_answer(client: httpx.Client) -> None:
    for method, path, body in STATELESS_ROUTES:
        assert_envelope(client.request(method, path, json=body), 200)


def ready(client: httpx.Client) -> httpx.Response:
    response = client.get("/health/ready")
    assert_envelope(response)
    return response


def metric(client: httpx.Client, prefix: str) -> float:
    """The sum of the samples whose line starts with `prefix` (a name and some labels)."""
    text = client.get("/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(prefix) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def served_from_redis(client: httpx.Client, session_id: str) -> bool:
    """True when a session read was answered by Redis (the session cache counted it)."""
    lookups = 'statebridge_cache_requests_total{cache="sessions"'
    before = metric(client, lookups)
    assert_envelope(client.get("/api/stateful/session", headers={"Session-ID": session_id}), 200)
    return metric(client, lookups) > before


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[PrivatePostgres, PrivateRedis, Server]]:
    with private_stack() as (postgres, redis):
        env = {"DATABASE_URL": postgres.url(), "REDIS_URL": redis.url}
        server = Server(env=env, data_dir=tmp_path / "a", args=["--migrate"]).start()
        try:
            yield postgres, redis, server
        finally:
            server.stop()


def test_redis_stopped_restarted_and_flushed_loses_nothing(
    stack: tuple[PrivatePostgres, PrivateRedis, Server],
) -> None:
    _postgres, redis, server = stack
    ledger = Ledger()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        sessions = new_sessions(client, 6)
        write_round(client, sessions, ledger)
        errors_before = metric(client, 'statebridge_store_errors_total{store="redis"} ')

        redis.stop()
        stateless_answer(client)
        assert_envelope(client.get("/info"), 200)  # requestCount falls back to the database
        for _ in range(3):
            write_round(client, sessions, ledger)  # sessions served from PostgreSQL: all 200
        sessions += new_sessions(client, 2)
        write_round(client, sessions, ledger)
        verify(client, sessions, ledger)
        response = ready(client)  # still ready: the database serves what Redis would
        assert response.status_code == 200
        assert response.json()["data"]["degraded"] is True
        components = response.json()["data"]["components"]
        assert components["redis"]["status"] == "down"
        assert components["database"]["status"] == "up"
        assert metric(client, 'statebridge_store_errors_total{store="redis"} ') > errors_before

        redis.start()  # back, and empty: no persistence
        wait_until(
            lambda: ready(client).json()["data"]["degraded"] is False,
            "/health/ready not degraded after Redis start",
            RECOVERY,
        )
        # without a restart, sessions are read from Redis again (after the 1 s breaker)
        wait_until(
            lambda: served_from_redis(client, sessions[0]), "sessions back on Redis", RECOVERY
        )
        write_round(client, sessions, ledger)
        verify(client, sessions, ledger)

        redis.flush()
        verify(client, sessions, ledger)
        write_round(client, sessions, ledger)
        verify(client, sessions, ledger)

        redis.restart()
        write_round(client, sessions, ledger)
        verify(client, sessions, ledger)

    assert set(ledger.statuses) == {200}, ledger.statuses
    log = server.log()
    assert "Redis unavailable" in log
    assert "Redis is back" in log
    errors = [line for line in log.splitlines() if '"level":"error"' in line]
    assert not errors, errors


def test_postgres_restart_and_crash_answer_503_then_recover(
    stack: tuple[PrivatePostgres, PrivateRedis, Server],
) -> None:
    postgres, _redis, server = stack
    ledger = Ledger()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        sessions = new_sessions(client, 6)
        write_round(client, sessions, ledger)

        postgres.stop("fast")
        stateless_answer(client)
        assert_envelope(client.get("/info"), 200)  # requestCount lives in Redis
        for path in ("/users", "/products", "/api/stateful/health", "/api/stateful/info"):
            response = client.get(path)
            assert_envelope(response)
            assert response.status_code in (200, 503), (path, response.text)
        response = client.post("/api/stateful/session", json={"userId": "user001"})
        assert_envelope(response, 503)
        for _ in range(2):
            write_round(client, sessions, ledger, allow_503=True)
        for session_id in sessions:  # reads come from Redis, or say 503
            response = client.get("/api/stateful/session", headers={"Session-ID": session_id})
            assert_envelope(response)
            assert response.status_code in (200, 503)
        response = ready(client)
        assert response.status_code == 503
        assert response.json()["data"]["degraded"] is False
        assert [item["field"] for item in response.json()["errors"]] == ["database"]
        components = response.json()["data"]["components"]
        assert components == {
            "database": {"status": "down", "error": components["database"]["error"]},
            "redis": {"status": "up", "latencyMs": components["redis"]["latencyMs"]},
        }
        assert ledger.statuses[503] > 0
        assert metric(client, 'statebridge_store_errors_total{store="database"} ') > 0

        postgres.start()
        wait_until(
            lambda: ready(client).status_code == 200, "/health/ready after restart", RECOVERY
        )
        write_round(client, sessions, ledger)  # no 503 once it is back
        verify(client, sessions, ledger)

        postgres.stop("immediate")  # a crash: acknowledged commits must survive recovery
        postgres.start()
        wait_until(
            lambda: ready(client).status_code == 200, "/health/ready after a crash", RECOVERY
        )
        write_round(client, sessions, ledger)
        verify(client, sessions, ledger)
        sessions += new_sessions(client, 1)
        write_round(client, sessions, ledger)
        verify(client, sessions, ledger)

    assert set(ledger.statuses) <= {200, 503}, ledger.statuses
    log = server.log()
    assert '"status":500' not in log  # the access log saw no 500 either
    errors = [line for line in log.splitlines() if '"level":"error"' in line]
    assert not errors, errors


async def _load_until(
    urls: list[str],
    sessions: list[str],
    ledger: Ledger,
    stop: asyncio.Event,
    failures_by_url: Counter[str],
) -> None:
    """One task per session: cart adds and session updates, alternating between instances."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def worker(index: int, session_id: str) -> None:
            headers = {"Session-ID": session_id}
            turn = index
            while not stop.is_set():
                turn += 1
                url = urls[turn % len(urls)]
                ledger.writes += 1
                key, value = f"k{ledger.writes}", ledger.writes
                try:
                    response = await client.post(
                        f"{url}/api/stateful/cart/add",
                        json={"productId": "prod002"},
                        headers=headers,
                    )
                    if check(response, ledger, allow_503=False):
                        ledger.cart[session_id] += 1
                    else:
                        ledger.cart_unacked[session_id] += 1
                except httpx.TransportError:
                    ledger.cart_unacked[session_id] += 1
                    failures_by_url[url] += 1
                    await asyncio.sleep(0.01)
                    continue
                try:
                    response = await client.put(
                        f"{url}/api/stateful/session", json={"data": {key: value}}, headers=headers
                    )
                    if check(response, ledger, allow_503=False):
                        ledger.data.setdefault(session_id, {})[key] = value
                except httpx.TransportError:
                    failures_by_url[url] += 1

        await asyncio.gather(*(worker(i, s) for i, s in enumerate(sessions)))


def test_sigkill_of_one_instance_under_load_loses_no_acknowledged_write(
    tmp_path: Path,
) -> None:
    with private_stack() as (postgres, redis):
        env = {"DATABASE_URL": postgres.url(), "REDIS_URL": redis.url}
        first = Server(env=env, data_dir=tmp_path / "a", args=["--migrate"]).start()
        second = Server(env=env, data_dir=tmp_path / "b").start()
        try:
            with httpx.Client(base_url=second.url, timeout=30) as client:
                sessions = new_sessions(client, 16)
            ledger = Ledger()
            failures: Counter[str] = Counter()

            async def scenario() -> None:
                stop = asyncio.Event()
                load = asyncio.create_task(
                    _load_until([first.url, second.url], sessions, ledger, stop, failures)
                )
                while sum(ledger.cart.values()) < 300:
                    await asyncio.sleep(0.01)
                assert first.process is not None
                first.process.send_signal(signal.SIGKILL)  # mid-load, no goodbye
                acked_at_kill = sum(ledger.cart.values())
                while sum(ledger.cart.values()) < acked_at_kill + 300:
                    await asyncio.sleep(0.01)
                stop.set()
                await load

            asyncio.run(scenario())
            assert first.process is not None and first.process.wait(10) == -signal.SIGKILL
            assert failures[first.url] > 0  # the kill did hit requests
            assert failures[second.url] == 0  # the survivor never dropped a connection
            with httpx.Client(base_url=second.url, timeout=30) as client:
                verify_load(client, sessions, ledger)
            # the killed instance comes back on its ports and serves the same state
            revived = Server(
                env=env,
                data_dir=tmp_path / "a2",
                port=first.port,
                stateless_port=first.stateless_port,
                stateful_port=first.stateful_port,
            ).start()
            try:
                with httpx.Client(base_url=revived.url, timeout=30) as client:
                    verify_load(client, sessions, ledger)
            finally:
                revived.stop()
        finally:
            first.stop()
            second.stop()
    assert set(ledger.statuses) == {200}, ledger.statuses


def verify_load(client: httpx.Client, sessions: list[str], ledger: Ledger) -> None:
    for session_id in sessions:
        headers = {"Session-ID": session_id}
        cart = assert_envelope(client.get("/api/stateful/cart", headers=headers), 200)
        quantity = sum(item["quantity"] for item in cart["data"]["cart"]["items"])
        acked, unacked = ledger.cart[session_id], ledger.cart_unacked[session_id]
        assert acked <= quantity <= acked + unacked, (session_id, quantity, acked, unacked)
        session = assert_envelope(client.get("/api/stateful/session", headers=headers), 200)
        data = session["data"]["session"]["data"]
        missing = {
            key: value
            for key, value in ledger.data.get(session_id, {}).items()
            if data.get(key) != value
        }
        assert not missing, (session_id, missing)


HTTP_SERVERS = ["uvicorn", "granian"]


@pytest.mark.parametrize("http_server", HTTP_SERVERS)
def test_sigterm_waits_for_a_body_still_arriving_then_closes_pools(
    tmp_path: Path, http_server: str
) -> None:
    server = Server(env={"STATEBRIDGE_HTTP_SERVER": http_server}, data_dir=tmp_path).start()
    body = b'{"operation": "add", "values": [20, 22]}'
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(post_head("/calculate", len(body)) + body[:10])
            time.sleep(0.3)  # the server has the headers: the request is in flight
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            wait_until(lambda: "Shutting down" in server.log(), "the stop begins", RECOVERY)
            if http_server == "uvicorn":
                wait_until(lambda: refuses(server.port), "listener closed after SIGTERM", RECOVERY)
            else:  # Granian listens until the bodies arriving are in; it answers, then closes
                late = get_on_new_connection(server.port, "/health")
                assert late.startswith(b"HTTP/1.1 200"), late[:300]
                assert b"\r\nconnection: close\r\n" in late.lower(), late[:600]
            time.sleep(1.0)
            assert server.process.poll() is None  # still waiting for our body
            sock.sendall(body[10:])
            answer = read_response(sock)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        assert b'"result":42' in answer
        # uvicorn re-raises the signal once it has shut down: "terminated by SIGTERM"
        assert server.process.wait(30) in (0, -signal.SIGTERM)
    finally:
        server.stop()
    log = server.log()
    assert "connection pools closed" in log
    assert "cut off" not in log
    assert log.index("Shutting down") < log.index("connection pools closed")


@pytest.mark.parametrize("http_server", HTTP_SERVERS)
def test_a_second_signal_stops_without_waiting_for_the_body(
    tmp_path: Path, http_server: str
) -> None:
    server = Server(env={"STATEBRIDGE_HTTP_SERVER": http_server}, data_dir=tmp_path).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(post_head("/calculate", 40) + b"{")
            time.sleep(0.3)
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            wait_until(lambda: "Shutting down" in server.log(), "the stop begins", RECOVERY)
            time.sleep(0.5)
            assert server.process.poll() is None  # waiting for the body
            server.process.send_signal(signal.SIGINT)  # Ctrl-C, as a second signal
            # well inside the 20 s grace period that the first signal would have waited
            assert server.process.wait(10) is not None
    finally:
        server.stop()
    if http_server == "granian":  # uvicorn's forced quit skips the lifespan shutdown
        assert "connection pools closed" in server.log()


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("http_server", HTTP_SERVERS)
def test_sigterm_closes_the_listener_and_answers_a_request_waiting_on_the_database(
    tmp_path: Path, http_server: str, workers: int
) -> None:
    env = {"STATEBRIDGE_HTTP_SERVER": http_server, "STATEBRIDGE_WORKERS": str(workers)}
    server = Server(env=env, data_dir=tmp_path).start()
    body = b'{"userId": "user001"}'
    database = sqlite3.connect(tmp_path / "statebridge.db", isolation_level=None)
    try:
        database.execute("BEGIN EXCLUSIVE")  # a new session must wait for this to end
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(post_head("/api/stateful/session", len(body)) + body)
            time.sleep(0.3)
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            wait_until(lambda: refuses(server.port), "listener closed after SIGTERM", RECOVERY)
            assert server.process.poll() is None  # still answering our request
            database.execute("COMMIT")
            answer = read_response(sock)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        assert b"session-id: " in answer.lower()
        assert server.process.wait(30) in (0, -signal.SIGTERM)
    finally:
        database.close()
        server.stop()
    assert "connection pools closed" in server.log()


def post_head(path: str, length: int) -> bytes:
    """The head of a JSON POST whose body, `length` bytes, the caller sends after it."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def get_on_new_connection(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        return read_response(sock)


def refuses(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


def read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n\r\n" + rest


@pytest.mark.parametrize("fault", ["kill", "flush"])
def test_redis_lost_under_load_with_two_instances_loses_nothing(tmp_path: Path, fault: str) -> None:
    """Two instances, 40 sessions adding to their carts through both in turn; Redis is
    killed with SIGKILL and started again empty (or flushed) in the middle of it. No
    acknowledged add is lost, none is invented, and no live session is ever refused."""
    with private_stack() as (postgres, redis):
        env = {"DATABASE_URL": postgres.url(), "REDIS_URL": redis.url}
        first = Server(env=env, data_dir=tmp_path / "a", args=["--migrate"]).start()
        second = Server(env=env, data_dir=tmp_path / "b").start()
        try:
            urls = [first.url, second.url]
            with httpx.Client(base_url=first.url, timeout=30) as client:
                sessions = new_sessions(client, 40)
            ledger = CartLedger()

            async def run() -> None:
                stop = asyncio.Event()
                load = asyncio.create_task(add_to_carts(urls, sessions, ledger, stop))
                await asyncio.sleep(2.0)
                if fault == "kill":
                    redis.kill()
                    await asyncio.sleep(0.5)
                    redis.start()
                else:
                    redis.flush()
                await asyncio.sleep(4.0)
                stop.set()
                await load

            asyncio.run(run())
            assert sum(ledger.acked.values()) > 200, ledger.acked  # the load really ran
            assert ledger.wrong_401 == 0, ledger.wrong_401
            assert ledger.server_errors == 0, ledger.samples  # any other status counts here
            for url in urls:
                with httpx.Client(base_url=url, timeout=30) as client:
                    for session_id in sessions:
                        headers = {"Session-ID": session_id}
                        cart = assert_envelope(
                            client.get("/api/stateful/cart", headers=headers), 200
                        )
                        quantity = sum(i["quantity"] for i in cart["data"]["cart"]["items"])
                        acked = ledger.acked[session_id]
                        unanswered = ledger.unanswered[session_id]
                        assert acked <= quantity <= acked + unanswered, (
                            session_id,
                            quantity,
                            acked,
                            unanswered,
                        )
        finally:
            second.stop()
            first.stop()
