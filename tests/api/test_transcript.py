"""Replay Phase 1's recorded 54-request walk and compare every answer with the recording.

For each row: the status code, whether a Session-ID header came back, the envelope's
`message`, and the shape of the whole body (keys and JSON types, recursively). Values that
are ids, timestamps, counters or random numbers differ by nature and are not compared.
The walk runs once against the Phase 1 ports and once under /api/... on the combined port.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from statebridge.ops.contract.shapes import shape_diff
from tests.support.recordings import TRANSCRIPT
from tests.support.servers import Server
from tests.support.transcript import SESSION_ROW, compare, load, replay_row, reset_seed_preferences


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
