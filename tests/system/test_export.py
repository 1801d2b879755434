"""`statebridge export --format phase1`: the rollback path, checked by a round trip.

Phase 1's export goes in (`migrate data` + `migrate sessions`) and comes back out in the
same form: users, products, live sessions and carts must be Phase 1's records again.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.commands import phase1, report, sql_rows, statebridge, write_json
from tests.support.recordings import PHASE1
from tests.support.servers import Server

NOW = "2026-11-29T14:31:00.000Z"  # the recorded sessions are live at this moment
USER_KEYS = ("id", "name", "email", "preferences")
PRODUCT_KEYS = ("id", "name", "price", "category")


@pytest.fixture(params=["services", "sqlite"])
def target(request: pytest.FixtureRequest) -> dict[str, str]:
    """PostgreSQL + Redis, and the embedded SQLite default."""
    env: dict[str, str] = request.getfixturevalue(
        "services" if request.param == "services" else "sqlite_env"
    )
    return env


def source_export(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    export = phase1("phase1-export.json")
    export["requestCount"] = 42
    return write_json(tmp_path / "phase1-export.json", export), export


def exported(env: dict[str, str], tmp_path: Path, *extra: str) -> dict[str, Any]:
    out = tmp_path / "rollback.json"
    result = statebridge(env, "export", str(out), *extra)
    assert result.returncode == 0, result.stderr
    assert not out.with_name(out.name + ".partial").exists()
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def pick(records: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    return {record["id"]: {key: record[key] for key in keys} for record in records}


def test_migrate_then_export_reproduces_phase1s_records(
    target: dict[str, str], tmp_path: Path
) -> None:
    path, source = source_export(tmp_path)
    report(target, "migrate", "data", "--phase1-export", str(path))
    sessions = report(target, "migrate", "sessions", str(path), "--now", NOW)
    assert sessions["imported"] == 3 and sessions["cart_items_imported"] == 5
    back = exported(target, tmp_path, "--format", "phase1", "--now", NOW)

    assert list(back) == list(source)  # Phase 1's importData() reads these keys
    assert pick(back["users"], USER_KEYS) == pick(source["users"], USER_KEYS)
    assert all("createdAt" not in user for user in back["users"])  # none invented
    assert pick(back["products"], PRODUCT_KEYS) == pick(source["products"], PRODUCT_KEYS)
    assert back["sessions"] == source["sessions"]
    assert back["carts"] == source["carts"]
    assert back["requestCount"] == 42
    assert back["exportedAt"] == NOW


def test_only_live_sessions_and_their_carts_are_exported(
    pg_env: dict[str, str], tmp_path: Path
) -> None:
    path = PHASE1 / "phase1-export.json"
    report(pg_env, "migrate", "data", "--phase1-export", str(path))
    report(pg_env, "migrate", "sessions", str(path), "--now", NOW)
    later = exported(pg_env, tmp_path, "--now", "2026-11-29T14:45:10.936Z")
    assert [s["id"] for s in later["sessions"]] == ["41fac53b-7495-4d71-a0d2-f832dca9a9b4"]
    assert [c["sessionId"] for c in later["carts"]] == ["41fac53b-7495-4d71-a0d2-f832dca9a9b4"]
    gone = exported(pg_env, tmp_path, "--now", "2026-11-29T15:00:00Z")
    assert gone["sessions"] == [] and gone["carts"] == []
    assert len(gone["users"]) == 2 and len(gone["products"]) == 3


@pytest.fixture
def server_for(tmp_path: Path) -> Iterator[Any]:
    started: list[Server] = []

    def start(env: dict[str, str]) -> Server:
        server = Server(env=env, data_dir=tmp_path / "server").start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_session_times_come_from_redis_where_they_are_fresher(
    services: dict[str, str], tmp_path: Path, server_for: Any
) -> None:
    report(services, "migrate", "data", "--phase1-export", str(PHASE1 / "phase1-export.json"))
    server = server_for(services)
    created = httpx.post(f"{server.stateful_url}/session", json={"userId": "user002"})
    session_id = created.headers["Session-ID"]
    time.sleep(1.2)
    seen = httpx.get(f"{server.stateful_url}/session", headers={"Session-ID": session_id})
    latest = seen.json()["data"]["session"]
    key = server.stored_key(session_id)
    stored = sql_rows(services, f"SELECT last_accessed FROM sessions WHERE id = '{key}'")[0][0]
    back = exported(services, tmp_path)
    [session] = [s for s in back["sessions"] if s["id"] == session_id]
    assert session["lastAccessed"] == latest["lastAccessed"]
    assert session["expiresAt"] == latest["expiresAt"]
    assert session["lastAccessed"] > stored.isoformat(timespec="milliseconds") + "Z"


def test_standard_output_and_gzip(pg_env: dict[str, str], tmp_path: Path) -> None:
    report(pg_env, "migrate", "data", "--phase1-export", str(PHASE1 / "phase1-export.json"))
    piped = statebridge(pg_env, "export", "-")
    assert piped.returncode == 0 and "exported 2 users" in piped.stderr
    assert len(json.loads(piped.stdout)["products"]) == 3
    out = tmp_path / "rollback.json.gz"
    assert statebridge(pg_env, "export", str(out)).returncode == 0
    assert len(json.loads(gzip.decompress(out.read_bytes()))["users"]) == 2
    wrong = statebridge(pg_env, "export", str(out), "--format", "csv")
    assert wrong.returncode == 2 and "unknown format" in wrong.stderr


def test_export_of_a_missing_embedded_database_creates_nothing(tmp_path: Path) -> None:
    env = {"STATEBRIDGE_DATA_DIR": str(tmp_path / "nowhere")}
    result = statebridge(env, "export", str(tmp_path / "out.json"))
    assert result.returncode == 1 and "no embedded database" in result.stderr
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "out.json").exists()
