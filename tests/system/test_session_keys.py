"""No usable session ids at rest, through real servers on each backend: what Redis and the
database hold, a rotation of STATEBRIDGE_SESSION_SECRET with its grace, the upgrade of a
database holding sessions of revision 0004, and the export back to Phase 1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis

from statebridge.stores.sessions.base import new_session_id
from tests.support.commands import report, sql_rows, statebridge
from tests.support.pairs import BACKENDS, backend_env
from tests.support.servers import Server, stored_key

OLD = "old-session-secret-0123456789abcdef"
NEW = "new-session-secret-fedcba9876543210"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    with backend_env(request.param, request) as env:
        yield {**env, "STATEBRIDGE_DATA_DIR": str(tmp_path / "data")}


def serve(env: dict[str, str], **extra: str) -> Server:
    return Server({**env, **extra}, Path(env["STATEBRIDGE_DATA_DIR"]), ["--migrate"]).start()


def new_session(server: Server, user: str = "user001") -> str:
    made = httpx.post(f"{server.stateful_url}/session", json={"userId": user})
    assert made.status_code == 200, made.text
    session_id = made.headers["Session-ID"]
    added = httpx.post(
        f"{server.stateful_url}/cart/add",
        json={"productId": "prod002", "quantity": 3},
        headers={"Session-ID": session_id},
    )
    assert added.status_code == 200, added.text
    return session_id


def call(
    server: Server, method: str, path: str, session_id: str, body: object = None
) -> httpx.Response:
    return httpx.request(
        method, f"{server.stateful_url}{path}", json=body, headers={"Session-ID": session_id}
    )


def cart_of(server: Server, session_id: str) -> list[tuple[str, int]]:
    answer = call(server, "GET", "/cart", session_id)
    assert answer.status_code == 200, answer.text
    return [
        (item["productId"], item["quantity"]) for item in answer.json()["data"]["cart"]["items"]
    ]


def dump(env: dict[str, str]) -> str:
    """Everything the backend keeps of sessions: the rows (and, embedded, the file's bytes),
    and every key of the Redis db with its value."""
    parts = [repr(sql_rows(env, "SELECT * FROM sessions"))]
    parts.append(repr(sql_rows(env, "SELECT * FROM shopping_carts")))
    if "DATABASE_URL" not in env:
        data = Path(env["STATEBRIDGE_DATA_DIR"])
        parts += [path.read_bytes().decode("latin-1") for path in data.glob("statebridge.db*")]
    if "REDIS_URL" in env:
        client = redis.Redis.from_url(env["REDIS_URL"])
        for name in client.scan_iter():
            kind = client.type(name).decode()
            value = {
                "hash": client.hgetall,
                "zset": lambda key: client.zrange(key, 0, -1),
                "string": client.get,
            }.get(kind, lambda key: None)(name)
            parts.append(f"{name!r} {value!r}")
    return "\n".join(parts)


def test_a_dump_holds_no_session_id(backend: dict[str, str]) -> None:
    server = serve(backend)
    try:
        kept = new_session(server)
        call(server, "PUT", "/session", kept, {"data": {"theme": "dark"}})
        renewed = call(server, "POST", "/session/regenerate", new_session(server))
        fresh = renewed.headers["Session-ID"]
        ended = new_session(server)
        assert call(server, "DELETE", "/session", ended).status_code == 200
    finally:
        server.stop()
    held = dump(backend)
    for session_id in (kept, fresh, ended):
        assert session_id not in held
        assert session_id.replace("-", "") not in held
    assert server.stored_key(kept) in held  # kept under its keyed hash
    shown = report(backend, "sessions", "key", kept)  # what an operator holding the id finds
    assert shown["key"] == server.stored_key(kept)
    if "REDIS_URL" in backend:
        assert redis.Redis.from_url(backend["REDIS_URL"]).exists(shown["redis"])
    server = serve(backend)  # and found again after a restart (the embedded secret is kept)
    try:
        assert call(server, "GET", "/session", kept).json()["data"]["session"]["data"] == {
            "theme": "dark"
        }
        assert cart_of(server, fresh) == [("prod002", 3)]
    finally:
        server.stop()


def test_the_previous_secret_works_until_it_is_dropped(backend: dict[str, str]) -> None:
    server = serve(backend, STATEBRIDGE_SESSION_SECRET=OLD)
    try:
        before = new_session(server)
    finally:
        server.stop()
    rotated = serve(
        backend, STATEBRIDGE_SESSION_SECRET=NEW, STATEBRIDGE_SESSION_SECRET_PREVIOUS=OLD
    )
    try:
        assert call(rotated, "GET", "/session", before).status_code == 200
        assert cart_of(rotated, before) == [("prod002", 3)]
        added = call(rotated, "POST", "/cart/add", before, {"productId": "prod001", "quantity": 1})
        assert added.status_code == 200, added.text
        assert call(rotated, "PUT", "/session", before, {"data": {"a": 1}}).status_code == 200
        after = new_session(rotated)
        listed = call(rotated, "GET", "/session/siblings", after).json()["data"]["sessions"]
        assert [s["current"] for s in listed] == [False, True]
        assert len({s["hint"] for s in listed}) == 2
    finally:
        rotated.stop()
    assert stored_key(after, {"STATEBRIDGE_SESSION_SECRET": NEW, **backend}, Path()) in dump(
        backend
    )
    dropped = serve(backend, STATEBRIDGE_SESSION_SECRET=NEW)
    try:
        assert call(dropped, "GET", "/session", before).status_code == 401
        assert call(dropped, "GET", "/cart", before).status_code == 401
        assert cart_of(dropped, after) == [("prod002", 3)]
    finally:
        dropped.stop()


def naive(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


@pytest.mark.parametrize("kind", ["embedded", "postgresql"])
def test_sessions_of_revision_0004_keep_working_after_the_upgrade(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with backend_env(kind, request) as plain:
        env = {**plain, "STATEBRIDGE_DATA_DIR": str(tmp_path / "data")}
        assert report(env, "db", "upgrade", "0004")["revision"] == "0004"
        session_id = new_session_id()
        now = datetime.now(UTC)
        for statement in (
            "INSERT INTO users (id, name, email) VALUES ('u1', 'One', 'one@example.com')",
            "INSERT INTO products (id, name, price, category) VALUES ('p1', 'Pen', 2.50, 'x')",
            "INSERT INTO sessions (id, user_id, data, created_at, last_accessed, expires_at, "
            f"max_expires_at, version) VALUES ('{session_id}', 'u1', '{{\"n\": 7}}', "
            f"'{naive(now)}', '{naive(now)}', '{naive(now + timedelta(minutes=10))}', "
            f"'{naive(now + timedelta(hours=1))}', 1)",
            "INSERT INTO shopping_carts (session_id, product_id, quantity) "
            f"VALUES ('{session_id}', 'p1', 4)",
        ):
            sql_rows(env, statement)
        assert report(env, "db", "upgrade")["revision"] == "head"
        assert session_id not in dump(env)
        server = serve(env)
        try:
            answer = call(server, "GET", "/session", session_id)
            assert answer.status_code == 200, answer.text
            assert answer.json()["data"]["session"]["data"] == {"n": 7}
            assert cart_of(server, session_id) == [("p1", 4)]
        finally:
            server.stop()
        # downgrade cannot give the rows their ids back: it ends every session
        assert report(env, "db", "downgrade", "0004")["revision"] == "0004"
        assert sql_rows(env, "SELECT count(*) FROM sessions") == [(0,)]
        assert sql_rows(env, "SELECT count(*) FROM shopping_carts") == [(0,)]


def test_the_export_gives_phase1_the_ids_and_they_work_again(
    backend: dict[str, str], pg_env: dict[str, str], tmp_path: Path
) -> None:
    server = serve(backend, STATEBRIDGE_SESSION_SECRET=OLD)
    try:
        session_id = new_session(server, "user002")
    finally:
        server.stop()
    out = tmp_path / "rollback.json"
    done = statebridge({**backend, "STATEBRIDGE_SESSION_SECRET": OLD}, "export", str(out))
    assert done.returncode == 0, done.stderr
    back = json.loads(out.read_text())
    assert [s["id"] for s in back["sessions"]] == [session_id]
    assert [c["sessionId"] for c in back["carts"]] == [session_id]
    # without the secret the ids cannot be opened: the sessions are left out, and said so
    blind = statebridge({**backend, "STATEBRIDGE_SESSION_SECRET": NEW}, "export", str(out))
    assert blind.returncode == 0, blind.stderr
    assert json.loads(out.read_text())["sessions"] == []
    assert "left out 1 live session" in blind.stdout + blind.stderr
    # the Phase 1 file brings the session, by its id, into another database and secret
    target = {**pg_env, "STATEBRIDGE_SESSION_SECRET": NEW}
    rollback = str(tmp_path / "phase1.json")
    Path(rollback).write_text(json.dumps(back))
    report(target, "migrate", "data", "--phase1-export", rollback)
    assert report(target, "migrate", "sessions", rollback)["imported"] == 1
    again = Server(target, tmp_path / "again").start()
    try:
        assert call(again, "GET", "/session", session_id).status_code == 200
        assert cart_of(again, session_id) == [("prod002", 3)]
    finally:
        again.stop()


def as_made_before_0005(path: Path, ids: dict[str, str]) -> None:
    """Rewrite a backup as one made before revision 0005: sessions under their ids (`ids`:
    key -> id), no sealed ids; the row checksums made again as the backup makes them."""
    from statebridge.ops.archive.backup import checksum_of
    from statebridge.ops.migrate.records import MASK

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    table, columns, total = "", [], 0
    for line in lines:
        if isinstance(line, dict) and "columns" in line:
            table, columns, total = line["table"], list(line["columns"]), 0
            if table == "sessions":
                line["columns"] = [name for name in columns if name != "sealed_id"]
        elif isinstance(line, list):
            row = dict(zip(columns, line, strict=True))
            if table == "sessions":
                row["id"] = ids.get(row["id"], row["id"])
                del row["sealed_id"]
            if table == "shopping_carts":
                row["session_id"] = ids.get(row["session_id"], row["session_id"])
            line[:] = list(row.values())
            total += checksum_of(line)
        elif isinstance(line, dict) and "end" in line:
            line["checksum"] = f"{total & MASK:016x}"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_a_backup_made_before_0005_restores_working_sessions(tmp_path: Path) -> None:
    made = {"STATEBRIDGE_DATA_DIR": str(tmp_path / "made")}
    server = serve(made)
    try:
        session_id = new_session(server)
    finally:
        server.stop()
    backup = tmp_path / "old.jsonl"
    report(made, "backup", str(backup))
    as_made_before_0005(backup, {server.stored_key(session_id): session_id})
    assert session_id in backup.read_text()
    restored = {"STATEBRIDGE_DATA_DIR": str(tmp_path / "restored")}
    report(restored, "restore", str(backup))
    assert session_id not in dump(restored)
    again = serve(restored)
    try:
        assert call(again, "GET", "/session", session_id).status_code == 200
        assert cart_of(again, session_id) == [("prod002", 3)]
    finally:
        again.stop()
