"""Server-wide counters (Phase 1's requestCount), shared by every instance: the interface
every backend implements (sql.py: a row per counter; redis.py: INCRBY, with the database's
counter as the fallback). Which one runs is chosen once, in statebridge/wiring/services.py.
"""

from __future__ import annotations

from typing import Protocol


class Counters(Protocol):
    async def incr(self, name: str) -> int:
        """The next number of the counter: each is handed out once."""
        ...

    async def get(self, name: str) -> int:
        """The counter's value now (0 before its first increment)."""
        ...
