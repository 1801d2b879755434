"""`statebridge backup` / `statebridge restore`: a logical backup that restores, row for row,
into an empty PostgreSQL or SQLite database, and refuses to clobber one that is not empty.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from statebridge.stores.sessions.redis import session_key
from tests.support.commands import report, shifted_export, sql_rows, statebridge, table_dump
from tests.support.databases import drop_pg_database, new_pg_database
from tests.support.recordings import PHASE1
from tests.support.servers import Server


@pytest.fixture
def empty_pg() -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL database without any schema: what a restore starts from."""
    name, url = new_pg_database()
    yield {"DATABASE_URL": url}
    drop_pg_database(name)


def populate(env: dict[str, str], tmp_path: Path) -> Path:
    """Users, products, three live sessions with carts; returns the Phase 1 export used."""
    source = shifted_export(tmp_path, timedelta(minutes=12))
    report(env, "migrate", "data", "--phase1-export", str(source))
    report(env, "migrate", "sessions", str(source))
    return source


def run_ok(env: dict[str, str], *args: str) -> str:
    result = statebridge(env, *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def backup_lines(path: Path) -> list[Any]:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return [json.loads(line) for line in raw.splitlines()]


@pytest.fixture
def server_for(tmp_path: Path) -> Iterator[Any]:
    started: list[Server] = []

    def start(env: dict[str, str]) -> Server:
        server = Server(env=env, data_dir=tmp_path / f"server{len(started)}").start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_backup_restores_into_a_fresh_postgres_identically(
    services: dict[str, str], empty_pg: dict[str, str], tmp_path: Path, server_for: Any
) -> None:
    populate(services, tmp_path)
    server = server_for(services)
    created = httpx.post(f"{server.stateful_url}/session", json={"userId": "user001"})
    session_id = created.headers["Session-ID"]
    headers = {"Session-ID": session_id}
    added = httpx.post(
        f"{server.stateful_url}/cart/add",
        json={"productId": "prod002", "quantity": 3},
        headers=headers,
    )
    assert added.status_code == 200
    for _ in range(3):
        assert httpx.get(f"{server.stateless_url}/info").status_code == 200
    server.stop()
    before = table_dump(services)

    path = tmp_path / "backup.jsonl.gz"
    assert "backed up users 2, products 3, sessions 4, shopping_carts 6" in run_ok(
        services, "backup", str(path)
    )
    lines = backup_lines(path)
    assert lines[0]["format"] == "statebridge-backup" and lines[-1] == {
        "end_of_backup": True,
        "tables": 5,
    }
    assert lines[-2]["redis_counters"]["requestCount"] >= 3

    target = {**empty_pg, "REDIS_URL": services["REDIS_URL"]}
    restored = run_ok(target, "restore", str(path))
    assert "verified" in restored and "cached 4 live sessions" in restored
    after = table_dump(target)
    assert {k: v for k, v in after.items() if k != "sessions"} == {
        k: v for k, v in before.items() if k != "sessions"
    }
    # sessions: the same rows, but lastAccessed/expiresAt as Redis had them (the table's copy
    # is refreshed lazily, so it may be older; never newer)
    unchanged = [0, 1, 2, 3, 6, 7]  # id, user_id, data, created_at, max_expires_at, version
    assert [[row[i] for i in unchanged] for row in after["sessions"]] == [
        [row[i] for i in unchanged] for row in before["sessions"]
    ]
    for new, old in zip(after["sessions"], before["sessions"], strict=True):
        assert new[4] >= old[4] and new[5] >= old[5]
    assert any(
        new[4] > old[4] for new, old in zip(after["sessions"], before["sessions"], strict=True)
    )
    client = redis.Redis.from_url(services["REDIS_URL"])
    assert (
        int(client.get("counter:requestCount") or 0) == lines[-2]["redis_counters"]["requestCount"]
    )

    restored_server = server_for(target)
    cart = httpx.get(f"{restored_server.stateful_url}/cart", headers=headers)
    assert cart.status_code == 200, cart.text
    assert [(i["productId"], i["quantity"]) for i in cart.json()["data"]["cart"]["items"]] == [
        ("prod002", 3)
    ]
    next_id = sql_rows(target, "SELECT nextval(pg_get_serial_sequence('shopping_carts', 'id'))")
    assert next_id[0][0] > max(int(row[0]) for row in before["shopping_carts"])


def test_restore_refuses_a_database_that_is_not_empty(
    pg_env: dict[str, str], empty_pg: dict[str, str], tmp_path: Path
) -> None:
    populate(pg_env, tmp_path)
    path = tmp_path / "backup.jsonl"
    run_ok(pg_env, "backup", str(path))
    run_ok(empty_pg, "restore", str(path))
    report(empty_pg, "migrate", "data", "--users", str(PHASE1 / "users.json"))
    sql_rows(empty_pg, "UPDATE products SET name = 'changed' WHERE id = 'prod001'")
    changed = table_dump(empty_pg)
    refused = statebridge(empty_pg, "restore", str(path))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "not empty (users 2, products 3, sessions 3, shopping_carts 5" in refused.stderr
    assert "--force" in refused.stderr
    assert table_dump(empty_pg) == changed
    assert "replaced the database's content" in run_ok(empty_pg, "restore", str(path), "--force")
    assert table_dump(empty_pg) == table_dump(pg_env)


def test_sqlite_backup_restores_into_postgres_and_back(
    sqlite_env: dict[str, str], empty_pg: dict[str, str], tmp_path: Path
) -> None:
    populate(sqlite_env, tmp_path)
    first = tmp_path / "sqlite.jsonl.gz"
    run_ok(sqlite_env, "backup", str(first))
    run_ok(empty_pg, "restore", str(first))
    second = tmp_path / "postgres.jsonl"
    run_ok(empty_pg, "backup", str(second))
    assert backup_lines(second)[1:] == backup_lines(first)[1:]  # all but the header
    again = {"STATEBRIDGE_DATA_DIR": str(tmp_path / "again")}
    run_ok(again, "restore", str(second))
    assert json_parsed(table_dump(again)) == json_parsed(table_dump(sqlite_env))


def json_parsed(dump: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[list[Any]]]:
    """JSON columns as values: PostgreSQL's jsonb orders keys its own way."""

    def value(cell: Any) -> Any:
        return json.loads(cell) if isinstance(cell, str) and cell.startswith("{") else cell

    return {table: [[value(cell) for cell in row] for row in rows] for table, rows in dump.items()}


def test_a_truncated_or_altered_backup_restores_nothing(
    pg_env: dict[str, str], empty_pg: dict[str, str], tmp_path: Path
) -> None:
    populate(pg_env, tmp_path)
    path = tmp_path / "backup.jsonl"
    run_ok(pg_env, "backup", str(path))
    lines = path.read_text().splitlines()

    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text("\n".join(lines[:-4]) + "\n")
    result = statebridge(empty_pg, "restore", str(truncated))
    assert result.returncode == 1 and "truncated" in result.stderr
    assert all(rows == [] for rows in table_dump(empty_pg).values())

    altered = tmp_path / "altered.jsonl"
    altered.write_text(
        "\n".join(line.replace("Sample Product B", "Sample Product Z") for line in lines)
    )
    result = statebridge(empty_pg, "restore", str(altered))
    assert (
        result.returncode == 1
        and "checksum" in result.stderr
        and "nothing was restored" in result.stderr
    )
    assert all(rows == [] for rows in table_dump(empty_pg).values())

    not_a_backup = statebridge(empty_pg, "restore", str(PHASE1 / "users.json"))
    assert not_a_backup.returncode == 1 and "not a statebridge backup" in not_a_backup.stderr


def test_backup_refuses_an_unmigrated_database(empty_pg: dict[str, str], tmp_path: Path) -> None:
    result = statebridge(empty_pg, "backup", str(tmp_path / "b.jsonl"))
    assert result.returncode == 1 and "statebridge db upgrade" in result.stderr
    assert not (tmp_path / "b.jsonl").exists()


def sessions_in(lines: list[Any]) -> tuple[list[str], list[str]]:
    """The session ids of a backup's sessions table, and the session ids of its cart rows."""
    columns: dict[str, list[str]] = {}
    rows: dict[str, list[list[Any]]] = {}
    current = ""
    for line in lines:
        if isinstance(line, dict) and "table" in line:
            current = line["table"]
            columns[current], rows[current] = line["columns"], []
        elif isinstance(line, list):
            rows[current].append(line)
    session_id = columns["sessions"].index("id")
    cart_session = columns["shopping_carts"].index("session_id")
    return (
        [row[session_id] for row in rows["sessions"]],
        sorted({row[cart_session] for row in rows["shopping_carts"]}),
    )


HOUR, HALF_HOUR, HALF = timedelta(hours=1), timedelta(minutes=30), timedelta(seconds=30)


def utcnow_aware() -> datetime:
    return datetime.now(UTC)


def naive_utc(moment: datetime) -> str:
    """A time as the naive UTC DateTime columns hold it, for SQL on either database."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


@pytest.mark.parametrize("target", ["sqlite_env", "services"])
def test_a_backup_holds_the_live_sessions_and_their_carts_only(
    request: pytest.FixtureRequest, target: str, empty_pg: dict[str, str], tmp_path: Path
) -> None:
    env: dict[str, str] = request.getfixturevalue(target)
    populate(env, tmp_path)
    carted = [row[0] for row in sql_rows(env, "SELECT DISTINCT session_id FROM shopping_carts")]
    ids = sorted(row[0] for row in sql_rows(env, "SELECT id FROM sessions"))
    assert len(ids) == 3 and len(carted) == 3
    gone, lagging, fine = sorted(carted)
    before = table_dump(env)
    # `gone` ended an hour ago, in the table and (on Redis setups) in Redis: its key expired
    sql_rows(env, f"UPDATE sessions SET expires_at = '{naive_utc(utcnow_aware() - HOUR)}' "
                  f"WHERE id = '{gone}'")  # fmt: skip
    if "REDIS_URL" in env:
        client = redis.Redis.from_url(env["REDIS_URL"])
        assert client.delete(session_key(gone)) == 1
        # `lagging`: the table's copy says ended 30 s ago, Redis (the truth) says alive
        sql_rows(env, f"UPDATE sessions SET expires_at = '{naive_utc(utcnow_aware() - HALF)}' "
                      f"WHERE id = '{lagging}'")  # fmt: skip

    path = tmp_path / "live.jsonl"
    summary = run_ok(env, "backup", str(path))
    kept_carts = [row for row in before["shopping_carts"] if row[1] != gone]
    assert f"sessions 2, shopping_carts {len(kept_carts)}," in summary, summary
    backed_sessions, backed_carts = sessions_in(backup_lines(path))
    assert sorted(backed_sessions) == [lagging, fine]
    assert backed_carts == sorted([lagging, fine])

    if "REDIS_URL" in env:
        restored_env = {**empty_pg, "REDIS_URL": env["REDIS_URL"]}
    else:  # the same kind of database: every column compares as text
        restored_env = {"STATEBRIDGE_DATA_DIR": str(tmp_path / "restored")}
    run_ok(restored_env, "restore", str(path))
    after = table_dump(restored_env)
    assert [row[0] for row in after["sessions"]] == sorted([lagging, fine])
    assert after["shopping_carts"] == kept_carts
    assert after["users"] == before["users"] and after["products"] == before["products"]
    if "REDIS_URL" not in env:
        assert after["sessions"] == [row for row in before["sessions"] if row[0] != gone]

    if "REDIS_URL" in env:
        return
    # the clock can be set, as for export: an hour and a half ago `gone` was alive
    earlier = (utcnow_aware() - HOUR - HALF_HOUR).isoformat().replace("+00:00", "Z")
    again = tmp_path / "earlier.jsonl"
    run_ok(env, "backup", str(again), "--now", earlier)
    assert gone in sessions_in(backup_lines(again))[0]
