"""`statebridge sessions list|revoke|stats`: the operator's commands, beside two running
instances on each backend; what they end is ended on both at once."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from statebridge.stores.sessions.base import id_hint
from tests.support.commands import statebridge
from tests.support.pairs import BACKENDS, backend_env, running_pair
from tests.support.servers import Server


@pytest.fixture(scope="module", params=BACKENDS)
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, str], tuple[Server, Server]]]:
    data_dir = tmp_path_factory.mktemp(request.param)
    with backend_env(request.param, request) as env, running_pair(env, data_dir) as servers:
        yield {**env, "STATEBRIDGE_DATA_DIR": str(data_dir)}, servers


def run(env: dict[str, str], *args: str) -> dict[str, object]:
    result = statebridge(env, "sessions", *args, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report: dict[str, object] = json.loads(result.stdout)
    return report


def new_session(server: Server, user: str) -> str:
    answer = httpx.post(
        f"{server.stateful_url}/session", json={"userId": user}, headers={"User-Agent": "cli-test"}
    )
    assert answer.status_code == 200
    return answer.headers["Session-ID"]


def status(server: Server, session_id: str) -> int:
    return httpx.get(
        f"{server.stateful_url}/session", headers={"Session-ID": session_id}
    ).status_code


def test_list_stats_and_revoke(deployment: tuple[dict[str, str], tuple[Server, Server]]) -> None:
    env, (first, second) = deployment
    hers = [new_session(first, "user002"), new_session(second, "user002")]
    his = new_session(first, "user001")

    listed = run(env, "list", "--user", "user002")
    rows = listed["sessions"]
    assert isinstance(rows, list)
    assert [item["hint"] for item in rows] == [id_hint(first.stored_key(sid)) for sid in hers]
    assert {item["userAgent"] for item in rows} == {"cli-test"}
    text = statebridge(env, "sessions", "list", "--user", "user002")
    assert text.returncode == 0 and "2 live session(s) of user002" in text.stdout
    assert all(session_id not in text.stdout for session_id in hers)

    stats = run(env, "stats")
    assert stats["live"] == 3 and stats["users"] == 2
    assert stats["backend"] == ("redis" if "REDIS_URL" in env else "sql")

    assert run(env, "revoke", "--user", "user002")["revoked"] == 2
    for server in (first, second):
        assert [status(server, session_id) for session_id in hers] == [401, 401]
        assert status(server, his) == 200
    assert run(env, "list", "--user", "user002")["sessions"] == []

    assert run(env, "revoke", "--all")["revoked"] == 1
    for server in (first, second):
        assert status(server, his) == 401
    assert run(env, "stats")["live"] == 0


def test_revoke_needs_one_target(deployment: tuple[dict[str, str], tuple[Server, Server]]) -> None:
    env, _ = deployment
    for args in ((), ("--user", "user001", "--all")):
        result = statebridge(env, "sessions", "revoke", *args)
        assert result.returncode == 2
        assert result.stderr.strip() == "statebridge: give exactly one of --user U and --all"


def test_the_memory_backend_is_out_of_reach() -> None:
    result = statebridge({"STATEBRIDGE_SESSION_BACKEND": "memory"}, "sessions", "stats")
    assert result.returncode == 2
    assert "memory backend keeps sessions inside each serving process" in result.stderr
