"""The metrics the alerts of deploy/monitoring read, produced by a real server on PostgreSQL
and a private Redis that the test kills, brings back empty, and a real `statebridge backup`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.commands import statebridge
from tests.support.databases import drop_pg_database, new_pg_database
from tests.support.metrics import scrape, value
from tests.support.private_services import PrivateRedis
from tests.support.servers import Server

pytestmark = [pytest.mark.monitoring, pytest.mark.faults]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Server, PrivateRedis, dict[str, str]]]:
    redis = PrivateRedis(tmp_path / "redis").start()
    try:
        name, url = new_pg_database()
    except Exception as exc:
        redis.stop()
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    env = {"DATABASE_URL": url, "REDIS_URL": redis.url}
    server = Server(env=env, data_dir=tmp_path / "server", args=["--migrate"])
    try:
        server.start()
        yield server, redis, env
    finally:
        server.stop()
        redis.stop()
        drop_pg_database(name)


def fallbacks(http: httpx.Client, reason: str) -> float:
    return value(scrape(http), "statebridge_session_fallback_reads_total", reason=reason)


def redis_up(http: httpx.Client) -> float:
    return value(scrape(http), "statebridge_dependency_up", dependency="redis")


def test_session_reads_without_redis_are_counted_by_reason(
    stack: tuple[Server, PrivateRedis, dict[str, str]],
) -> None:
    server, redis, _ = stack
    with httpx.Client(base_url=server.url, timeout=30) as http:
        created = http.post("/api/stateful/session", json={"userId": "user002"})
        headers = {"Session-ID": created.headers["Session-ID"]}
        assert http.get("/api/stateful/cart", headers=headers).status_code == 200
        assert fallbacks(http, "unavailable") == fallbacks(http, "missed") == 0
        assert redis_up(http) == 1

        redis.kill()
        for _ in range(3):
            assert http.get("/api/stateful/cart", headers=headers).status_code == 200
        assert fallbacks(http, "unavailable") == 3
        assert redis_up(http) == 0
        assert value(scrape(http), "statebridge_dependency_up", dependency="database") == 1

        redis.start()  # back, and empty: the session is PostgreSQL's alone
        deadline = time.monotonic() + 10
        while redis_up(http) == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.1)  # the store tries Redis again a second after its last failure
        assert http.get("/api/stateful/cart", headers=headers).status_code == 200
        assert fallbacks(http, "missed") == 1
        assert http.get("/api/stateful/cart", headers=headers).status_code == 200
        assert fallbacks(http, "missed") == 1  # cached again: Redis serves it
        # an id no store knows is not a session served from PostgreSQL
        unknown = {"Session-ID": "0" * 32}
        assert http.get("/api/stateful/cart", headers=unknown).status_code in (400, 401, 404)
        assert fallbacks(http, "missed") == 1


def test_a_backup_records_its_time_for_the_metrics(
    stack: tuple[Server, PrivateRedis, dict[str, str]], tmp_path: Path
) -> None:
    server, _, env = stack
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert value(scrape(http), "statebridge_last_backup_timestamp_seconds") == 0
        before = time.time()
        result = statebridge(env, "backup", str(tmp_path / "backup.jsonl"))
        assert result.returncode == 0, result.stderr
        after = time.time()
        recorded = value(scrape(http), "statebridge_last_backup_timestamp_seconds")
        assert before <= recorded <= after
        # a second backup moves it on
        assert statebridge(env, "backup", str(tmp_path / "again.jsonl")).returncode == 0
        assert value(scrape(http), "statebridge_last_backup_timestamp_seconds") > recorded
