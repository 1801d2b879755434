"""The user's other sessions: `GET /session/siblings`, `DELETE /session/siblings` and
`DELETE /session/siblings/{hint}`, on each backend with two instances sharing it (and on the
memory backend, one instance)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from statebridge.stores.sessions.base import id_hint
from tests.support.pairs import BACKENDS, backend_env, running_pair
from tests.support.servers import Server


@pytest.fixture(scope="module", params=[*BACKENDS, "memory"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server]]:
    if request.param == "memory":  # one process: both "instances" are the same one
        env = {"STATEBRIDGE_SESSION_BACKEND": "memory"}
        server = Server(env, tmp_path_factory.mktemp("memory")).start()
        yield server, server
        server.stop()
        return
    with (
        backend_env(request.param, request) as env,
        running_pair(env, tmp_path_factory.mktemp(request.param)) as servers,
    ):
        yield servers


def new_session(server: Server, user: str, agent: str) -> str:
    answer = httpx.post(
        f"{server.stateful_url}/session", json={"userId": user}, headers={"User-Agent": agent}
    )
    assert answer.status_code == 200, answer.text
    return answer.headers["Session-ID"]


def hint_of(server: Server, session_id: str) -> str:
    """The hint the server shows for a session: of the key it keeps the session under."""
    return id_hint(server.stored_key(session_id))


def status(server: Server, session_id: str) -> int:
    return httpx.get(
        f"{server.stateful_url}/session", headers={"Session-ID": session_id}
    ).status_code


def test_siblings_are_listed_by_hint_and_ended_one_or_all(pair: tuple[Server, Server]) -> None:
    first, second = pair
    mine = [new_session(first, "user002", f"browser-{n}") for n in range(3)]
    other_user = new_session(second, "user001", "elsewhere")
    # a session of user002 with the same user, but already ended, is not listed
    ended = new_session(first, "user002", "gone")
    assert httpx.delete(f"{first.stateful_url}/session", headers={"Session-ID": ended}).is_success

    listed = httpx.get(f"{second.stateful_url}/session/siblings", headers={"Session-ID": mine[0]})
    assert listed.status_code == 200, listed.text
    data = listed.json()["data"]
    assert data["userId"] == "user002"
    sessions = data["sessions"]
    assert [s["userAgent"] for s in sessions] == ["browser-0", "browser-1", "browser-2"]
    assert [s["current"] for s in sessions] == [True, False, False]
    assert [s["hint"] for s in sessions] == [hint_of(first, session_id) for session_id in mine]
    for sibling in sessions:
        assert re.fullmatch(r"[0-9a-f]{12}", sibling["hint"])
        assert sibling["clientAddress"] == "127.0.0.1"
        assert set(sibling) == {
            "hint", "current", "createdAt", "lastAccessed", "expiresAt", "clientAddress",
            "userAgent",
        }  # fmt: skip
    for session_id in (*mine[1:], other_user, ended):  # no other session's id, whole or cut
        assert session_id not in listed.text
        assert session_id.split("-")[0] not in listed.text

    headers = {"Session-ID": mine[0]}
    own = httpx.delete(
        f"{first.stateful_url}/session/siblings/{hint_of(first, mine[0])}", headers=headers
    )
    assert own.status_code == 400
    unknown = httpx.delete(
        f"{first.stateful_url}/session/siblings/{hint_of(first, other_user)}", headers=headers
    )
    assert unknown.status_code == 404  # another user's session is not a sibling
    one = httpx.delete(
        f"{first.stateful_url}/session/siblings/{hint_of(first, mine[1])}", headers=headers
    )
    assert one.status_code == 200, one.text
    assert one.json()["data"]["revoked"] == [hint_of(first, mine[1])]
    for server in (first, second):  # at once, on every instance
        assert status(server, mine[1]) == 401
        assert status(server, mine[2]) == 200

    everyone = httpx.delete(f"{second.stateful_url}/session/siblings", headers=headers)
    assert everyone.status_code == 200
    assert everyone.json()["data"]["revoked"] == [hint_of(first, mine[2])]
    for server in (first, second):
        assert status(server, mine[2]) == 401
        assert status(server, mine[0]) == 200
        assert status(server, other_user) == 200
    left = httpx.get(f"{first.stateful_url}/session/siblings", headers=headers).json()["data"]
    assert [s["hint"] for s in left["sessions"]] == [hint_of(first, mine[0])]
    for session_id in (mine[0], other_user):
        httpx.delete(f"{first.stateful_url}/session", headers={"Session-ID": session_id})


def test_siblings_need_a_live_session(pair: tuple[Server, Server]) -> None:
    for method in ("GET", "DELETE"):
        answer = httpx.request(method, f"{pair[0].stateful_url}/session/siblings")
        assert answer.status_code == 401
    answer = httpx.delete(f"{pair[0].stateful_url}/session/siblings/0123456789ab")
    assert answer.status_code == 401


def test_a_regenerated_session_keeps_where_it_was_made(pair: tuple[Server, Server]) -> None:
    first, second = pair
    session_id = new_session(first, "user001", "laptop")
    renewed = httpx.post(
        f"{first.stateful_url}/session/regenerate", headers={"Session-ID": session_id}
    ).headers["Session-ID"]
    listed = httpx.get(f"{second.stateful_url}/session/siblings", headers={"Session-ID": renewed})
    ours = [s for s in listed.json()["data"]["sessions"] if s["current"]]
    assert [(s["hint"], s["userAgent"]) for s in ours] == [(hint_of(first, renewed), "laptop")]
    httpx.delete(f"{first.stateful_url}/session", headers={"Session-ID": renewed})


def test_the_index_on_user_id_finds_a_users_sessions(tmp_path: Path) -> None:
    """Embedded: the query plan of the siblings' lookup uses idx_sessions_user_id."""
    import sqlite3

    server = Server({}, tmp_path).start()
    server.stop()
    conn = sqlite3.connect(tmp_path / "statebridge.db")
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM sessions WHERE user_id = ? AND expires_at > ?",
        ("user001", "2026-01-01"),
    ).fetchall()
    conn.close()
    assert any("idx_sessions_user_id" in row[-1] for row in plan), plan
