"""Session lifecycle events: each one counted in /metrics (`statebridge_sessions_total`,
label `event`) and logged as one JSON line, with the request id when a request caused it.

Events: `created`, `expired` (swept by this instance), `revoked` (ended by the user, for
themselves or their other sessions) and `regenerated`. Sessions are named by their hint,
never by their id."""

from __future__ import annotations

import logging

from statebridge.observability.metrics import METRICS

log = logging.getLogger("statebridge.sessions")
EVENTS = ("created", "expired", "revoked", "regenerated")


def session_event(event: str, count: int = 1, **fields: str | int | list[str]) -> None:
    assert event in EVENTS, event
    if count <= 0:
        return
    METRICS.session_event(event, count)
    log.info(
        "session %s%s",
        event,
        f" x{count}" if count != 1 else "",
        extra={"fields": {"event": f"session.{event}", "count": count, **fields}},
    )
