"""The in-process catalog cache: what one instance writes, every instance shows next.

Each check first makes the reading instance cache the catalog (and proves it did, from its
/metrics), then changes a user's preferences through another instance and reads them back
at once: a cache that missed the change would answer the old value.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.support.servers import Server

USER = "user002"
CACHE_REDIS_DB = 11
JSON = {"Content-Type": "application/json"}
HITS = re.compile(r'statebridge_cache_requests_total\{cache="catalog",result="hit"\} (\d+)')


def catalog_hits(client: httpx.Client, base: str) -> int:
    match = HITS.search(client.get(f"{base}/metrics").text)
    return int(match.group(1)) if match else 0


def new_session(client: httpx.Client, stateful: str) -> str:
    answer = client.post(f"{stateful}/session", json={"userId": USER})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["data"]["session"]["id"])


def set_theme(client: httpx.Client, stateful: str, session: str, theme: str) -> None:
    answer = client.put(
        f"{stateful}/profile/preferences",
        headers={"Session-ID": session, **JSON},
        json={"preferences": {"theme": theme, "language": "en"}},
    )
    assert answer.status_code == 200, answer.text


def themes_seen(client: httpx.Client, stateless: str, stateful: str, session: str) -> list[str]:
    """The user's theme as /users, /users/{id} and /profile answer it."""
    answers = [
        client.get(f"{stateless}/users"),
        client.get(f"{stateless}/users/{USER}"),
        client.get(f"{stateful}/profile", headers={"Session-ID": session}),
    ]
    for answer in answers:
        assert answer.status_code == 200, (str(answer.url), answer.text[:300])
    users, single, profile = (answer.json()["data"] for answer in answers)
    listed = next(user for user in users["users"] if user["id"] == USER)
    return [
        listed["preferences"]["theme"],
        single["user"]["preferences"]["theme"],
        profile["profile"]["preferences"]["theme"],
    ]


@pytest.fixture(scope="module")
def own_redis(redis_url: str) -> Iterator[str]:
    """A Redis db of this module's own: a flush by another suite on the shared one would
    drop our sessions mid-test (the catalog channel is per db number too)."""
    url = redis_url.rsplit("/", 1)[0] + f"/{CACHE_REDIS_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def services(pg_database: str, own_redis: str) -> dict[str, str]:
    return {"DATABASE_URL": pg_database, "REDIS_URL": own_redis}


@pytest.fixture
def two_instances(services: dict[str, str], tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    """Two statebridge processes on the same PostgreSQL and Redis."""
    first = Server(env=services, data_dir=tmp_path / "a", args=["--migrate"]).start()
    second = Server(env=services, data_dir=tmp_path / "b").start()
    try:
        yield first, second
    finally:
        second.stop()
        first.stop()


@pytest.mark.services
def test_preferences_show_on_the_next_request_on_every_instance(
    two_instances: tuple[Server, Server],
) -> None:
    with httpx.Client(timeout=10) as client:
        session = new_session(client, two_instances[0].stateful_url)
        original = client.get(f"{two_instances[0].stateless_url}/users/{USER}").json()
        try:
            for i in range(12):
                writer, reader = two_instances[i % 2], two_instances[(i + 1) % 2]
                themes_seen(client, reader.stateless_url, reader.stateful_url, session)
                before = catalog_hits(client, reader.stateless_url)
                themes_seen(client, reader.stateless_url, reader.stateful_url, session)
                assert catalog_hits(client, reader.stateless_url) > before, "not cached"
                theme = f"theme-{i}-{uuid.uuid4().hex[:6]}"
                set_theme(client, writer.stateful_url, session, theme)
                seen = themes_seen(client, reader.stateless_url, reader.stateful_url, session)
                assert seen == [theme] * 3, f"round {i}: wrote {theme} on one, read {seen}"
        finally:
            prefs = original["data"]["user"]["preferences"]
            client.put(
                f"{two_instances[0].stateful_url}/profile/preferences",
                headers={"Session-ID": session, **JSON},
                json={"preferences": prefs},
            )


@pytest.mark.services
def test_a_change_shows_at_once_while_the_reader_is_busy(
    two_instances: tuple[Server, Server],
) -> None:
    """The reader checks its subscription at most once per event-loop turn; under a steady
    load of cached reads a change written elsewhere must still show on the next request."""
    writer, reader = two_instances
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=10) as busy:
            while not stop.is_set():
                busy.get(f"{reader.stateless_url}/users")

    with httpx.Client(timeout=10) as client:
        session = new_session(client, writer.stateful_url)
        original = client.get(f"{writer.stateless_url}/users/{USER}").json()
        workers = [threading.Thread(target=load) for _ in range(6)]
        for worker in workers:
            worker.start()
        try:
            for i in range(25):
                theme = f"busy-{i}-{uuid.uuid4().hex[:6]}"
                set_theme(client, writer.stateful_url, session, theme)
                seen = client.get(f"{reader.stateless_url}/users/{USER}").json()
                assert seen["data"]["user"]["preferences"]["theme"] == theme, f"round {i}"
        finally:
            stop.set()
            for worker in workers:
                worker.join()
            prefs = original["data"]["user"]["preferences"]
            client.put(
                f"{writer.stateful_url}/profile/preferences",
                headers={"Session-ID": session, **JSON},
                json={"preferences": prefs},
            )


@pytest.mark.services
def test_a_lost_subscription_bypasses_the_cache_until_it_is_back(
    two_instances: tuple[Server, Server], own_redis: str
) -> None:
    writer, reader = two_instances
    assert reader.process is not None
    admin = redis.Redis.from_url(own_redis)
    name = f"statebridge-catalog-{reader.process.pid}"
    with httpx.Client(timeout=10) as client:
        session = new_session(client, writer.stateful_url)
        themes_seen(client, reader.stateless_url, reader.stateful_url, session)
        ids = [c["id"] for c in admin.client_list(_type="pubsub") if c.get("name") == name]
        assert ids, "the reader has no catalog subscription"
        for client_id in ids:
            admin.client_kill_filter(_id=client_id)
        for step in range(3):
            theme = f"after-kill-{step}-{uuid.uuid4().hex[:6]}"
            set_theme(client, writer.stateful_url, session, theme)
            seen = themes_seen(client, reader.stateless_url, reader.stateful_url, session)
            assert seen == [theme] * 3, f"step {step}: read {seen}"
            time.sleep(0.8)  # the subscriber reconnects within about a second
        back = [c for c in admin.client_list(_type="pubsub") if c.get("name") == name]
        assert back, "the reader did not subscribe again"
        themes_seen(client, reader.stateless_url, reader.stateful_url, session)
        before = catalog_hits(client, reader.stateless_url)
        themes_seen(client, reader.stateless_url, reader.stateful_url, session)
        assert catalog_hits(client, reader.stateless_url) > before, "cache not used again"
    admin.close()


@pytest.mark.services
def test_postgresql_alone_tells_instances_with_notify(pg_database: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": pg_database, "STATEBRIDGE_SESSION_BACKEND": "sql"}
    first = Server(env=env, data_dir=tmp_path / "a", args=["--migrate"]).start()
    second = Server(env=env, data_dir=tmp_path / "b").start()
    try:
        with httpx.Client(timeout=10) as client:
            session = new_session(client, first.stateful_url)
            for i in range(8):
                writer, reader = (first, second) if i % 2 else (second, first)
                themes_seen(client, reader.stateless_url, reader.stateful_url, session)
                theme = f"notify-{i}-{uuid.uuid4().hex[:6]}"
                set_theme(client, writer.stateful_url, session, theme)
                seen = themes_seen(client, reader.stateless_url, reader.stateful_url, session)
                assert seen == [theme] * 3, f"round {i}: read {seen}"
            set_theme(client, first.stateful_url, session, "dark")
    finally:
        second.stop()
        first.stop()


def test_workers_sharing_one_sqlite_file_see_each_others_writes(tmp_path: Path) -> None:
    server = Server(env={}, data_dir=tmp_path, args=["--workers", "2"]).start()
    stateful = f"{server.url}/api/stateful"
    instances: set[str] = set()
    try:
        with httpx.Client(timeout=10) as client:
            session = new_session(client, stateful)
        for i in range(6):
            for _ in range(4):  # fresh connections: both workers get some, and cache
                answer = httpx.get(f"{server.url}/users", timeout=10)
                instances.add(answer.headers["x-instance-id"])
            theme = f"file-{i}-{uuid.uuid4().hex[:6]}"
            with httpx.Client(timeout=10) as client:
                set_theme(client, stateful, session, theme)
            for _ in range(6):
                answer = httpx.get(f"{server.url}/users/{USER}", timeout=10)
                instances.add(answer.headers["x-instance-id"])
                assert answer.json()["data"]["user"]["preferences"]["theme"] == theme
        assert len(instances) == 2, f"one worker answered everything: {instances}"
    finally:
        server.stop()
