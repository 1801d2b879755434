"""Session writes that arrive together share one statement (statebridge/batching.py): none
may be lost, reordered or mixed up with another, on either backend; and a steady load opens
no database connections.

The writes are sent from many threads at once, so that they reach the server in the same
event-loop turns and go out in the same batches.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.envelope import success_data
from tests.support.private_services import own_server
from tests.support.servers import Server

THREADS = 24
POOL_SIZE = 10  # each pool's size (statebridge/db/engine.py, statebridge/stores/pgpool.py)
OPENED = re.compile(r'^statebridge_db_connections_opened_total\{pool="(\w+)"\} (\d+)$', re.M)


@pytest.fixture(
    scope="module", params=["embedded", pytest.param("services", marks=pytest.mark.services)]
)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    with own_server(request.param, tmp_path / "server") as running:
        yield running


@pytest.fixture(scope="module")
def tmp_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("write-path")


def new_session(client: httpx.Client, server: Server, user: str = "user001") -> str:
    answer = client.post(f"{server.stateful_url}/session", json={"userId": user})
    assert answer.status_code == 200, answer.text
    return answer.headers["Session-ID"]


def at_once(count: int, call: object) -> list[httpx.Response]:
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(call, range(count)))  # type: ignore[arg-type]


def test_concurrent_merges_into_one_session_keep_every_key(server: Server) -> None:
    with httpx.Client(timeout=30) as client:
        session = new_session(client, server)
        headers = {"Session-ID": session}

        def put(i: int) -> httpx.Response:
            with httpx.Client(timeout=30) as own:
                return own.put(
                    f"{server.stateful_url}/session", json={"data": {f"k{i}": i}}, headers=headers
                )

        answers = at_once(96, put)
        for i, answer in enumerate(answers):
            data = success_data(answer, "Session updated successfully")["session"]["data"]
            assert data[f"k{i}"] == i  # each answer holds its own write
        final = success_data(
            client.get(f"{server.stateful_url}/session", headers=headers), "Session information"
        )
        assert final["session"]["data"] == {f"k{i}": i for i in range(96)}


def test_concurrent_visits_count_each_once(server: Server) -> None:
    with httpx.Client(timeout=30) as client:
        session = new_session(client, server)
        headers = {"Session-ID": session}

        def visit(_i: int) -> httpx.Response:
            with httpx.Client(timeout=30) as own:
                return own.get(f"{server.stateful_url}/demonstrate/stateful", headers=headers)

        answers = at_once(80, visit)
        counts = sorted(
            success_data(answer, "Stateful behavior demonstration")["visitCount"]
            for answer in answers
        )
        assert counts == list(range(1, 81))  # every visit counted, none twice


def test_concurrent_preferences_each_answer_its_own(server: Server) -> None:
    with httpx.Client(timeout=30) as client:
        sessions = [new_session(client, server, "user002") for _ in range(8)]

        def save(i: int) -> httpx.Response:
            with httpx.Client(timeout=30) as own:
                return own.put(
                    f"{server.stateful_url}/profile/preferences",
                    json={"preferences": {"theme": f"t{i}"}},
                    headers={"Session-ID": sessions[i % len(sessions)]},
                )

        answers = at_once(64, save)
        themes = {f"t{i}" for i in range(64)}
        for i, answer in enumerate(answers):
            profile = success_data(answer, "Preferences updated")["profile"]
            assert profile["preferences"] == {"theme": f"t{i}"}
        stored = success_data(
            client.get(f"{server.stateful_url}/profile", headers={"Session-ID": sessions[0]}),
            "User profile",
        )["profile"]["preferences"]
        assert stored["theme"] in themes  # one of them, last writer wins
        client.put(
            f"{server.stateful_url}/profile/preferences",
            json={"preferences": {"theme": "light"}},
            headers={"Session-ID": sessions[0]},
        )


def test_a_steady_load_opens_no_database_connections(server: Server) -> None:
    """Connections are opened up to the pools' sizes and then kept: across three bursts of
    concurrent writes no pool opens more than it holds (an overflow that is opened and
    closed again per burst would climb past it)."""
    with httpx.Client(timeout=30) as client:
        sessions = [new_session(client, server) for _ in range(16)]

        def burst(i: int) -> httpx.Response:
            headers = {"Session-ID": sessions[i % len(sessions)]}
            with httpx.Client(timeout=30) as own:
                if i % 3 == 0:
                    return own.put(
                        f"{server.stateful_url}/session", json={"data": {"n": i}}, headers=headers
                    )
                if i % 3 == 1:
                    return own.post(
                        f"{server.stateful_url}/cart/add",
                        json={"productId": "prod001"},
                        headers=headers,
                    )
                return own.post(f"{server.stateful_url}/session", json={"userId": "user001"})

        def opened() -> dict[str, int]:
            text = client.get(f"{server.url}/metrics").text
            return {pool: int(count) for pool, count in OPENED.findall(text)}

        for _ in range(3):
            assert all(answer.status_code == 200 for answer in at_once(200, burst))
        counted = opened()
        assert set(counted) >= {"asyncpg", "sqlalchemy"} and sum(counted.values()) >= 1
        # the schema check at start opens one SQLAlchemy connection of its own
        assert counted["sqlalchemy"] <= POOL_SIZE + 1, counted
        assert counted["asyncpg"] <= POOL_SIZE, counted
