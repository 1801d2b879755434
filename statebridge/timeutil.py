"""Time in the shape Phase 1 speaks: naive UTC inside, JavaScript ISO strings outside."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1)


def utcnow() -> datetime:
    """Now, as naive UTC truncated to milliseconds (what JavaScript can represent)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def js_iso(moment: datetime) -> str:
    """`Date.prototype.toISOString()`: `2026-11-29T14:31:36.186Z`."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds") + "Z"


_last_now: tuple[int, str] = (-1, "")


def js_now() -> str:
    """Now as `toISOString()`; formatted once per millisecond (it is on every answer)."""
    global _last_now
    millis = time.time_ns() // 1_000_000
    if millis != _last_now[0]:
        moment = EPOCH + timedelta(milliseconds=millis)
        _last_now = (millis, moment.isoformat(timespec="milliseconds") + "Z")
    return _last_now[1]


def parse_iso(text: str) -> datetime:
    """Parse an ISO timestamp (a trailing `Z` included) into naive UTC."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def js_round(value: float) -> int:
    """`Math.round`: halves go up, unlike Python's `round`."""
    return math.floor(value + 0.5)


def age_text(created: datetime, now: datetime) -> str:
    return f"{js_round((now - created).total_seconds())} seconds"
