"""Server-wide counters (Phase 1's requestCount), shared by every instance: the interface
every backend implements (sql.py: a row per counter; redis.py: INCRBY, with the database's
counter as the fallback). Which one runs is chosen once, in statebridge/wiring/services.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Protocol

from statebridge.batching import Coalescer

Batch = Callable[[str, list[None]], Awaitable[list[int]]]


class Counters(Protocol):
    async def incr(self, name: str) -> int:
        """The next number of the counter: each is handed out once."""
        ...

    async def get(self, name: str) -> int:
        """The counter's value now (0 before its first increment)."""
        ...


class PerName:
    """The calls for one counter name that arrive together, as one batch of `run(name,
    callers)`; one Coalescer per name, made on first use."""

    def __init__(self, run: Batch) -> None:
        self.run = run
        self._by_name: dict[str, Coalescer[None, int]] = {}

    async def submit(self, name: str) -> int:
        coalescer = self._by_name.get(name)
        if coalescer is None:
            coalescer = self._by_name[name] = Coalescer(partial(self.run, name))
        return await coalescer.submit(None)


def handed_out(top: int, count: int) -> list[int]:
    """The `count` numbers an increment by `count` to `top` hands out, in order."""
    return list(range(top - count + 1, top + 1))
