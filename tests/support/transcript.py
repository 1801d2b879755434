"""Replaying Phase 1's recorded 54-request walk (examples/phase1/transcript.json) against a
running server, and comparing every answer with the recording: the status code, whether a
Session-ID header came back, the envelope's `message`, and the shape of the whole body."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from statebridge.ops.contract.shapes import shape_diff
from tests.support.recordings import PHASE1

SEED_USERS = PHASE1 / "users.json"
CLIENT_ID = "transcript"
SESSION_ROW = 25
# random content whose length is not fixed by the request
LOOSE_LENGTHS = ("$.data.values",)


def load(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


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
