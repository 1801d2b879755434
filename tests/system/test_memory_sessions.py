"""The `memory` session backend: sessions in one process, Phase 1's weakness kept on purpose,
and `statebridge demo scale-out`, which shows it beside the shared backends."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import Server, clean_env, free_port

MEMORY = {"STATEBRIDGE_SESSION_BACKEND": "memory"}


@pytest.fixture(params=["embedded", "postgresql"])
def catalog_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Where the catalog lives: the embedded file, or PostgreSQL (sessions stay in memory)."""
    if request.param == "embedded":
        return {}
    return {"DATABASE_URL": request.getfixturevalue("pg_database")}


@pytest.fixture
def pair(catalog_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    """Two memory-backed instances on one catalog (one data directory, or one database)."""
    env = {**catalog_env, **MEMORY}
    first = Server(env, tmp_path, ["--migrate"]).start()
    second = Server(env, tmp_path).start()
    yield first, second
    first.stop()
    second.stop()


def test_a_memory_session_works_on_its_own_instance_only(pair: tuple[Server, Server]) -> None:
    first, second = pair
    created = httpx.post(f"{first.stateful_url}/session", json={"userId": "user001"})
    assert created.status_code == 200, created.text
    headers = {"Session-ID": created.headers["Session-ID"]}
    put = httpx.put(f"{first.stateful_url}/session", json={"data": {"k": 1}}, headers=headers)
    assert put.status_code == 200 and put.json()["data"]["session"]["data"] == {"k": 1}
    added = httpx.post(
        f"{first.stateful_url}/cart/add",
        json={"productId": "prod001", "quantity": 2},
        headers=headers,
    )
    assert added.status_code == 200, added.text
    cart = httpx.get(f"{first.stateful_url}/cart", headers=headers).json()["data"]["cart"]
    assert [(item["productId"], item["quantity"]) for item in cart["items"]] == [("prod001", 2)]
    visits = httpx.get(f"{first.stateful_url}/demonstrate/stateful", headers=headers)
    assert visits.json()["data"]["visitCount"] == 1
    health = httpx.get(f"{first.stateful_url}/health").json()["data"]
    assert (health["activeSessions"], health["activeCarts"]) == (1, 1)
    # the other instance never heard of it: Phase 1's weakness
    lost = httpx.get(f"{second.stateful_url}/session", headers=headers)
    assert lost.status_code == 401
    assert lost.json()["message"] == "Session not found or expired"
    assert httpx.get(f"{second.stateful_url}/health").json()["data"]["activeSessions"] == 0
    ended = httpx.delete(f"{first.stateful_url}/session", headers=headers)
    assert ended.status_code == 200 and ended.json()["data"]["deleted"] is True
    assert httpx.get(f"{first.stateful_url}/cart", headers=headers).status_code == 401
    assert httpx.get(f"{first.stateful_url}/health").json()["data"]["activeCarts"] == 0


def test_a_memory_session_is_gone_after_a_restart(tmp_path: Path) -> None:
    server = Server(MEMORY, tmp_path).start()
    try:
        created = httpx.post(f"{server.stateful_url}/session", json={"userId": "user002"})
        headers = {"Session-ID": created.headers["Session-ID"]}
        assert httpx.get(f"{server.stateful_url}/session", headers=headers).status_code == 200
        server.stop()
        server.start()
        assert httpx.get(f"{server.stateful_url}/session", headers=headers).status_code == 401
    finally:
        server.stop()


def test_production_refuses_the_memory_backend(tmp_path: Path) -> None:
    database = f"postgresql://statebridge:secret@127.0.0.1:{free_port()}/statebridge"
    result = subprocess.run(
        [sys.executable, "-m", "statebridge", "serve", "--port", str(free_port()),
         "--stateless-port", "0", "--stateful-port", "0"],
        env=clean_env({"STATEBRIDGE_ENV": "production", "STATEBRIDGE_DATA_DIR": str(tmp_path),
                       "DATABASE_URL": database, **MEMORY}),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("statebridge: production refuses STATEBRIDGE_SESSION_BACKEND=memory")


@pytest.fixture(params=["embedded", "services"])
def shared_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "embedded":
        return {}
    return dict(request.getfixturevalue("services_env"))


def test_demo_scale_out_shows_the_memory_session_lost_and_the_shared_one_found(
    shared_env: dict[str, str],
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "statebridge", "demo", "scale-out", "--migrate", "--json"],
        env=clean_env({"COLUMNS": "160", **shared_env}),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] is True and report["error"] is None
    assert report["memory"]["statusOnOtherInstance"] == 401
    assert report["shared"]["statusOnOtherInstance"] == 200
    expected = "PostgreSQL + Redis" if shared_env else "embedded SQLite"
    assert report["shared"]["backend"].startswith(expected)
    assert report["instances"] == ["scale-out-a", "scale-out-b"]
    reads_on_b = [
        exchange["status"]
        for exchange in report["exchanges"]
        if exchange["side"] == "instance B" and exchange["path"] == "/cart"
    ]
    assert reads_on_b == [401, 200]
    assert "Instance B does not know the session" in result.stderr
