"""The live-session and active-cart counts that /health and /info report, at O(1) a request.

Counting is a query over every live session (an index range in Redis, a scan in SQL), too
dear to run per request at a million sessions. The counts are kept for up to `max_age`
seconds and computed by one caller at a time (the others wait for its answer); a change
made through this process (`changed()`) makes the next read count again, so a client sees
its own session and cart counted at once. Other instances' changes show within `max_age`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Counted(Protocol):
    async def count(self) -> int: ...


class CartsCounted(Protocol):
    async def count_active(self) -> int: ...


class LiveCounts:
    def __init__(self, sessions: Counted, carts: CartsCounted, max_age: float = 1.0) -> None:
        self.sessions = sessions
        self.carts = carts
        self.max_age = max_age
        self.generation = 0  # bumped by every change made here
        self.counted = 0  # how many times the stores were asked
        self._value: tuple[int, int] | None = None
        self._expires = 0.0
        self._counting: tuple[int, asyncio.Future[tuple[int, int]]] | None = None

    def changed(self) -> None:
        """A session or cart changed here: the next read counts again."""
        self.generation += 1
        self._expires = 0.0

    async def read(self) -> tuple[int, int]:
        """(live sessions, non-empty carts of live sessions)."""
        if self._value is not None and time.monotonic() < self._expires:
            return self._value
        counting = self._counting
        if counting is None or counting[0] != self.generation or counting[1].done():
            # only a count begun after the latest change can answer for it
            counting = self._counting = (self.generation, asyncio.ensure_future(self._count()))
        return await asyncio.shield(counting[1])

    async def _count(self) -> tuple[int, int]:
        generation, started = self.generation, time.monotonic()
        sessions, carts = await asyncio.gather(self.sessions.count(), self.carts.count_active())
        self.counted += 1
        if generation == self.generation:  # nothing changed here meanwhile: keep it
            self._value = (sessions, carts)
            self._expires = started + self.max_age
        return sessions, carts
