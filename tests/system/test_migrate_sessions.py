"""`statebridge migrate sessions`: Phase 1's sessions (both forms) into PostgreSQL + Redis and
SQLite, checked through a real statebridge server.

The recorded sessions expired minutes after they were recorded, so the tests move their
timestamps relative to the clock (or pass `--now`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from statebridge.stores.sessions.redis import MARKER, session_key
from statebridge.timeutil import parse_iso
from tests.support.commands import (
    live_for,
    phase1,
    report,
    shift,
    shifted_export,
    sql_rows,
    statebridge,
    table_dump,
    write_json,
)
from tests.support.recordings import PHASE1
from tests.support.servers import Server, free_port, stored_key

LIVE, EXPIRED, GHOST = (
    "d08dbf8c-8d71-4f77-97b2-01d4fdcbfc29",
    "8a707908-a9f0-473d-9c0b-dba8f88f504a",
    "41fac53b-7495-4d71-a0d2-f832dca9a9b4",
)


def shifted_guide_file(tmp_path: Path) -> Path:
    """The guide's form: one session live for 10 more minutes, one expired a minute ago,
    one live but for a user that does not exist here."""
    sessions = phase1("phase1-sessions.json")
    plan = {
        LIVE: timedelta(minutes=10),
        EXPIRED: timedelta(minutes=-1),
        GHOST: timedelta(minutes=5),
    }
    for session_id, remaining in plan.items():
        shift(sessions[session_id], live_for(sessions[session_id], remaining))
    sessions[GHOST]["userId"] = "ghost"
    return write_json(tmp_path / "phase1-sessions.json", sessions)


def migrate_users(env: dict[str, str]) -> None:
    report(env, "migrate", "data", "--phase1-export", str(PHASE1 / "phase1-export.json"))


@pytest.fixture
def server_on(tmp_path: Path) -> Iterator[Any]:
    started: list[Server] = []

    def start(env: dict[str, str]) -> Server:
        data_dir = Path(env.get("STATEBRIDGE_DATA_DIR") or tmp_path / "server")
        server = Server(
            env={k: v for k, v in env.items() if k != "STATEBRIDGE_DATA_DIR"}, data_dir=data_dir
        )
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


def get(server: Server, path: str, session_id: str) -> httpx.Response:
    return httpx.get(f"{server.stateful_url}{path}", headers={"Session-ID": session_id}, timeout=10)


def test_guide_form_live_expired_and_missing_user(
    services: dict[str, str],
    tmp_path: Path,
    server_on: Any,
) -> None:
    migrate_users(services)
    server = server_on(services)  # warms Redis and sets the marker before the import
    client = redis.Redis.from_url(services["REDIS_URL"])
    assert client.exists(MARKER)
    source = shifted_guide_file(tmp_path)
    data = report(services, "migrate", "sessions", str(source))
    assert data["form"] == "phase1-sessions.json"
    assert (data["read"], data["imported"], data["expired"], data["missing_user"]) == (3, 1, 1, 1)
    assert [(p["where"], p["reason"]) for p in data["problems"]["items"]] == [
        (f"session {GHOST}", "user ghost does not exist")
    ]
    assert 590 < data["shortest_ttl_seconds"] <= 600 and data["cached_in_redis"] == 1

    original = phase1("phase1-sessions.json")[LIVE]
    shifted = json.loads(source.read_text())[LIVE]
    rows = sql_rows(
        services,
        "SELECT user_id, created_at, expires_at, max_expires_at, version FROM sessions",
    )
    assert rows == [
        (
            "user001",
            parse_iso(shifted["createdAt"]),
            parse_iso(shifted["expiresAt"]),
            parse_iso(shifted["createdAt"]) + timedelta(days=1),
            1,
        )
    ]
    # the key outlives the session by the grace (STATEBRIDGE_SESSION_DB_REFRESH, 60 s)
    key = stored_key(LIVE, services, tmp_path)
    assert 560_000 < client.pttl(session_key(key)) <= 660_000
    # a dump of Redis and of the table holds no session id, only its keyed hash
    dumped = [client.hgetall(name) for name in client.scan_iter("session:*")]
    assert LIVE.encode() not in repr(dumped).encode()
    assert LIVE not in repr(sql_rows(services, "SELECT * FROM sessions"))

    answer = get(server, "/session", LIVE)
    assert answer.status_code == 200, answer.text
    session = answer.json()["data"]["session"]
    assert session["userId"] == "user001" and session["data"] == original["data"]
    assert session["createdAt"] == shifted["createdAt"]
    assert get(server, "/session", EXPIRED).status_code == 401
    assert get(server, "/session", GHOST).status_code == 401


def test_export_form_brings_the_carts(
    services: dict[str, str],
    tmp_path: Path,
    server_on: Any,
) -> None:
    migrate_users(services)
    server = server_on(services)
    source = shifted_export(tmp_path)
    data = report(services, "migrate", "sessions", str(source))
    assert data["form"] == "exportData()"
    assert (data["imported"], data["carts_read"], data["cart_items_imported"]) == (3, 3, 5)
    assert data["problems"]["count"] == 0
    export = json.loads(source.read_text())
    for cart in export["carts"]:
        answer = get(server, "/cart", cart["sessionId"])
        assert answer.status_code == 200, answer.text
        got = answer.json()["data"]["cart"]
        assert got["items"] == cart["items"]
        assert got["total"] == cart["total"]
        assert got["createdAt"] == cart["createdAt"]
    assert sql_rows(services, "SELECT count(*) FROM shopping_carts") == [(5,)]


def test_now_fixes_the_clock(pg_env: dict[str, str]) -> None:
    migrate_users(pg_env)
    export = str(PHASE1 / "phase1-export.json")
    before = report(
        pg_env, "migrate", "sessions", export, "--now", "2026-11-29T14:40:00Z", "--dry-run"
    )
    assert (before["imported"], before["expired"], before["cart_items_imported"]) == (3, 0, 5)
    assert before["shortest_ttl_seconds"] == pytest.approx(310.917, abs=0.01)
    assert sql_rows(pg_env, "SELECT count(*) FROM sessions") == [(0,)]
    after = report(pg_env, "migrate", "sessions", export, "--now", "2026-11-29T14:46:00Z")
    assert (after["imported"], after["expired"]) == (0, 3)
    guide = str(PHASE1 / "phase1-sessions.json")
    written = report(pg_env, "migrate", "sessions", guide, "--now", "2026-11-29T14:40:00Z")
    assert written["imported"] == 3 and written["redis"].endswith("(no REDIS_URL)")
    rows = sql_rows(pg_env, "SELECT id, expires_at FROM sessions ORDER BY created_at")
    source = phase1("phase1-sessions.json")
    assert rows == [
        (stored_key(session_id, pg_env, Path()), parse_iso(value["expiresAt"]))
        for session_id, value in source.items()
    ]
    bad = statebridge(pg_env, "migrate", "sessions", guide, "--now", "yesterday")
    assert bad.returncode == 2 and "--now" in bad.stderr


def test_a_second_run_changes_nothing(
    services: dict[str, str],
    tmp_path: Path,
) -> None:
    migrate_users(services)
    source = shifted_export(tmp_path)
    first = report(services, "migrate", "sessions", str(source))
    assert first["imported"] == 3 and first["cached_in_redis"] == 3
    client = redis.Redis.from_url(services["REDIS_URL"])
    keys = sorted(client.scan_iter("session:*"))
    hashes = {key: client.hgetall(key) for key in keys}
    before = table_dump(services)
    second = report(services, "migrate", "sessions", str(source))
    assert (second["imported"], second["already_present"], second["carts_skipped"]) == (0, 3, 3)
    assert second["cart_items_imported"] == 0 and second["cached_in_redis"] == 0
    assert table_dump(services) == before
    assert {key: client.hgetall(key) for key in keys} == hashes


def test_invalid_sessions_and_cart_items_are_reported(
    pg_env: dict[str, str],
    tmp_path: Path,
) -> None:
    migrate_users(pg_env)
    export = phase1("phase1-export.json")
    good = export["sessions"][0]
    bad_sessions = [
        {**good, "id": "not-a-uuid"},
        {**good, "id": "00000000-0000-4000-8000-000000000001", "userId": None},
        {**good, "id": "00000000-0000-4000-8000-000000000002", "expiresAt": "soon"},
        {**good, "id": "00000000-0000-4000-8000-000000000003", "data": ["x"]},
        {**good, "id": "00000000-0000-4000-8000-000000000004", "createdAt": None},
        copy.deepcopy(good),
    ]
    export["sessions"] = [good, *bad_sessions]
    export["carts"][0]["items"] += [
        {
            "productId": "prod404",
            "name": "Gone",
            "price": 1,
            "quantity": 1,
            "addedAt": good["createdAt"],
        },
        {
            "productId": "prod002",
            "name": "B",
            "price": 19.99,
            "quantity": "2",
            "addedAt": good["createdAt"],
        },
        {
            "productId": "prod003",
            "name": "C",
            "price": 9.99,
            "quantity": 0,
            "addedAt": good["createdAt"],
        },
        {
            "productId": "prod001",
            "name": "A",
            "price": 29.99,
            "quantity": 1,
            "addedAt": good["createdAt"],
        },
    ]
    path = write_json(tmp_path / "export.json", export)
    data = report(pg_env, "migrate", "sessions", str(path), "--now", "2026-11-29T14:40:00Z")
    problems = {p["where"]: p["reason"] for p in data["problems"]["items"]}
    assert problems == {
        "sessions[1]": "id is not a UUID",
        "sessions[2]": "userId is missing or not a user id",
        "sessions[3]": "expiresAt is not an ISO timestamp: 'soon'",
        "sessions[4]": "data must be an object",
        "sessions[5]": "createdAt is missing",
        "sessions[6]": "duplicate session id",
        "carts[0].items[1]": "product prod404 does not exist",
        "carts[0].items[2]": "quantity must be a positive integer, not '2'",
        "carts[0].items[3]": "quantity must be a positive integer, not 0",
        "carts[0].items[4]": "product prod001 appears twice in the cart",
    }
    assert (data["imported"], data["invalid"], data["cart_items_refused"]) == (1, 6, 4)
    assert data["carts_skipped"] == 2  # the other two sessions were not in this file
    rows = sql_rows(pg_env, "SELECT session_id, product_id, quantity FROM shopping_carts")
    assert rows == [(stored_key(good["id"], pg_env, Path()), "prod001", 2)]


def test_sqlite_sessions_go_to_the_sessions_table(
    sqlite_env: dict[str, str],
    tmp_path: Path,
    server_on: Any,
) -> None:
    migrate_users(sqlite_env)
    source = shifted_export(tmp_path)
    data = report(sqlite_env, "migrate", "sessions", str(source))
    assert (
        data["database"] == "sqlite" and data["imported"] == 3 and data["cart_items_imported"] == 5
    )
    again = report(sqlite_env, "migrate", "sessions", str(source))
    assert again["already_present"] == 3 and again["imported"] == 0
    server = server_on(sqlite_env)
    export = json.loads(source.read_text())
    for session, cart in zip(export["sessions"], export["carts"], strict=True):
        answer = get(server, "/session", session["id"])
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["session"]["data"] == session["data"]
        got = get(server, "/cart", session["id"])  # the first cart read of a fresh server
        assert got.status_code == 200, got.text
        assert got.json()["data"]["cart"]["items"] == cart["items"]


def test_an_unreachable_redis_stops_the_import_before_it_writes(
    pg_env: dict[str, str],
    tmp_path: Path,
) -> None:
    migrate_users(pg_env)
    env = {**pg_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    result = statebridge(env, "migrate", "sessions", str(shifted_export(tmp_path)))
    assert result.returncode == 1 and "cannot reach Redis" in result.stderr
    assert "Traceback" not in result.stderr
    assert sql_rows(pg_env, "SELECT count(*) FROM sessions") == [(0,)]
