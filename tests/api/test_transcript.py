"""Replay Phase 1's recorded 54-request walk and compare every answer with the recording.

For each row: the status code, whether a Session-ID header came back, the envelope's
`message`, and the shape of the whole body (keys and JSON types, recursively). Values that
are ids, timestamps, counters or random numbers differ by nature and are not compared.
The walk runs once against the Phase 1 ports and once under /api/... on the combined port.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from statebridge.ops.contract.shapes import shape_diff
from tests.support.recordings import PHASE1, TRANSCRIPT
from tests.support.servers import Server

SEED_USERS = PHASE1 / "users.json"
CLIENT_ID = "transcript"
SESSION_ROW = 25
# random content whose length is not fixed by the request
LOOSE_LENGTHS = ("$.data.values",)


def load(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


@pytest.fixture(scope="module")
def transcript() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = load(TRANSCRIPT)
    assert len(rows) == 54
    return rows


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=15) as client:
        yield client


def bases(server: Server, mode: str) -> dict[str, str]:
    if mode == "legacy":
        return {"sl": server.stateless_url, "sf": server.stateful_url}
    return {"sl": f"{server.url}/api/stateless", "sf": f"{server.url}/api/stateful"}


def reset_seed_preferences(http: httpx.Client, stateful: str) -> None:
    """The recording starts from Phase 1's seed users; put their preferences back in case an
    earlier test changed them (preferences outlive sessions by design)."""
    for user in load(SEED_USERS):
        created = http.post(f"{stateful}/session", json={"userId": user["id"]})
        created.raise_for_status()
        headers = {"Session-ID": created.headers["session-id"]}
        body = {"preferences": user["preferences"]}
        http.put(f"{stateful}/profile/preferences", json=body, headers=headers).raise_for_status()
        http.delete(f"{stateful}/session", headers=headers).raise_for_status()


def replay_row(
    http: httpx.Client, base: str, row: dict[str, Any], session_id: str | None
) -> httpx.Response:
    headers = {"Client-ID": CLIENT_ID}
    if row["server"] == "sf" and session_id is not None:
        headers["Session-ID"] = session_id
    kwargs: dict[str, Any] = {"headers": headers}
    if row["body"] is not None:
        kwargs["json"] = row["body"]
    return http.request(row["method"], f"{base}{row['path']}", **kwargs)


def compare(row: dict[str, Any], response: httpx.Response) -> list[str]:
    problems = []
    if response.status_code != row["status"]:
        problems.append(f"status {response.status_code}, recorded {row['status']}")
    has_header = "session-id" in response.headers
    if has_header != row["session_header"]:
        problems.append(
            f"Session-ID header present: {has_header}, recorded {row['session_header']}"
        )
    try:
        body = response.json()
    except ValueError:
        return [*problems, f"not JSON: {response.text[:200]!r}"]
    recorded = row["response"]
    if body.get("message") != recorded["message"]:
        problems.append(f"message {body.get('message')!r}, recorded {recorded['message']!r}")
    problems.extend(shape_diff(recorded, body, loose_lengths=LOOSE_LENGTHS))
    return problems


@pytest.mark.parametrize("mode", ["legacy", "prefixed"])
def test_transcript_replays(
    http: httpx.Client, server: Server, transcript: list[dict[str, Any]], mode: str
) -> None:
    urls = bases(server, mode)
    reset_seed_preferences(http, urls["sf"])
    session_id: str | None = None
    failures: list[str] = []
    for index, row in enumerate(transcript):
        response = replay_row(http, urls[row["server"]], row, session_id)
        if index == SESSION_ROW:
            session_id = response.headers.get("session-id")
        problems = compare(row, response)
        if problems:
            label = f"row {index} {row['server']} {row['method']} {row['path']}"
            failures.append(f"{label}: " + "; ".join(problems))
    matched = len(transcript) - len(failures)
    assert session_id is not None, "row 25 (POST /session) gave no Session-ID header"
    assert not failures, f"{matched}/{len(transcript)} rows match in {mode} mode:\n" + "\n".join(
        failures
    )
    print(f"{matched}/{len(transcript)} rows match in {mode} mode")


def test_rows_26_and_27_create_no_session(
    http: httpx.Client, server: Server, transcript: list[dict[str, Any]]
) -> None:
    stateful = server.stateful_url
    before = http.get(f"{stateful}/health").json()["data"]["activeSessions"]
    for index in (26, 27):
        response = replay_row(http, stateful, transcript[index], None)
        assert response.status_code == transcript[index]["status"]
        assert "session-id" not in response.headers
    after = http.get(f"{stateful}/health").json()["data"]["activeSessions"]
    assert after <= before


def test_shape_comparison_catches_differences(transcript: list[dict[str, Any]]) -> None:
    """The comparison itself must be able to fail: a renamed key, a retyped value and a
    shorter list are all reported."""
    recorded = transcript[33]["response"]
    renamed = json.loads(json.dumps(recorded))
    renamed["data"]["cart"]["itemCount"] = "1"
    del renamed["data"]["addedItem"]["quantity"]
    renamed["data"]["cart"]["items"] = []
    problems = shape_diff(recorded, renamed)
    assert any("itemCount" in problem for problem in problems)
    assert any("addedItem.quantity: missing" in problem for problem in problems)
    assert any("items" in problem for problem in problems)
    assert shape_diff(recorded, recorded) == []
