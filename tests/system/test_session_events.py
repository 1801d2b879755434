"""Session lifecycle in /metrics and the log: `statebridge_sessions_total{event}` counts
created, expired, revoked and regenerated sessions; `statebridge_sessions_live{backend}` is
the live count; each event is one JSON log line with the request id. Two instances per
shared backend, their counters summed."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.pairs import BACKENDS, backend_env, running_pair
from tests.support.servers import Server

SHORT = {
    "STATEBRIDGE_SESSION_TTL": "2",
    "STATEBRIDGE_SWEEP_INTERVAL": "1",
    "STATEBRIDGE_SESSION_DB_REFRESH": "1",
    "STATEBRIDGE_LOG_FORMAT": "json",
}


@pytest.fixture(scope="module", params=[*BACKENDS, "memory"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, tuple[Server, ...]]]:
    if request.param == "memory":
        env = {**SHORT, "STATEBRIDGE_SESSION_BACKEND": "memory"}
        server = Server(env, tmp_path_factory.mktemp("memory")).start()
        yield "memory", (server,)
        server.stop()
        return
    with (
        backend_env(request.param, request) as env,
        running_pair(env, tmp_path_factory.mktemp(request.param), SHORT) as servers,
    ):
        yield ("sql" if request.param != "postgresql+redis" else "redis"), servers


def scrape(servers: tuple[Server, ...]) -> tuple[dict[str, int], list[float]]:
    """The events summed over the instances, and each instance's live gauge."""
    events: dict[str, int] = {}
    live = []
    for server in servers:
        text = httpx.get(f"{server.url}/metrics").text
        for event, value in re.findall(
            r'^statebridge_sessions_total\{event="(\w+)"\} (\d+)$', text, re.M
        ):
            events[event] = events.get(event, 0) + int(value)
        live += [
            float(v)
            for v in re.findall(r'^statebridge_sessions_live\{backend="\w+"\} (\S+)$', text, re.M)
        ]
    return events, live


def test_events_are_counted_and_logged(pair: tuple[str, tuple[Server, ...]]) -> None:
    backend, servers = pair
    first, last = servers[0], servers[-1]
    text = httpx.get(f"{first.url}/metrics").text
    assert f'statebridge_sessions_live{{backend="{backend}"}}' in text
    before, _ = scrape(servers)
    assert set(before) == {"created", "expired", "revoked", "regenerated"}

    made = [
        httpx.post(f"{first.stateful_url}/session", json={"userId": "user001"}).headers[
            "Session-ID"
        ]
        for _ in range(3)
    ]
    ended = httpx.delete(f"{last.stateful_url}/session", headers={"Session-ID": made[0]})
    assert ended.is_success
    renewed = httpx.post(f"{last.stateful_url}/session/regenerate", headers={"Session-ID": made[1]})
    assert renewed.is_success
    # the third, and the regenerated one, are left to expire (2 s idle) and be swept
    deadline = time.monotonic() + 20
    while True:
        after, live = scrape(servers)
        expired = after["expired"] - before["expired"]
        if (expired >= 2 and all(value == 0 for value in live)) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert after["created"] - before["created"] == 3
    assert after["revoked"] - before["revoked"] == 1
    assert after["regenerated"] - before["regenerated"] == 1
    assert expired == 2, after
    assert live and all(value == 0 for value in live), live

    lines = [json.loads(line) for server in servers for line in server.log().splitlines()
             if line.startswith("{") and '"session.' in line]  # fmt: skip
    by_event: dict[str, list[dict[str, object]]] = {}
    for line in lines:
        by_event.setdefault(str(line["event"]), []).append(line)
    for event in ("session.created", "session.revoked", "session.regenerated"):
        assert by_event.get(event), (event, lines)
        for line in by_event[event]:
            assert re.fullmatch(r"[0-9a-f]{24}", str(line["requestId"])), line
            assert line["logger"] == "statebridge.sessions"
    assert any(line["count"] == 2 or line["count"] == 1 for line in by_event["session.expired"])
    for session_id in made:  # the logs name sessions by hint, never by id
        assert all(session_id not in json.dumps(line) for line in lines)
