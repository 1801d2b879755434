"""Catalog reads from a streaming replica (DATABASE_READ_URL), writes on the primary.

A replica replays the primary's changes a little later (milliseconds when healthy, longer
under load or after a pause), so a read that must see a change is never sent there:

- writes (preferences) go to the primary;
- `primary` is the plain primary catalog: the cache (statebridge/catalog/cache.py) loads
  from it whenever it reloads because of a known change (this process's own write, or one
  announced by another instance), so read-after-write never meets a lagging replica;
- the replica answers the other reads: the first load, the reloads of a copy that only grew
  old, and the reads made while the cache is bypassed; for `RECENT` seconds after this
  process's own write, those go to the primary too.

A replica that fails a read (down, unreachable, cancelled by a recovery conflict) is left
alone for `RETRY` seconds; meanwhile the primary answers, and each such read is counted
(`statebridge_db_read_fallbacks_total`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

from statebridge.catalog.repository import Catalog, Record
from statebridge.observability.metrics import METRICS

log = logging.getLogger("statebridge.catalog")
T = TypeVar("T")
RETRY = 5.0  # seconds the primary answers alone after the replica failed
RECENT = 5.0  # seconds after this process's own write that reads stay on the primary
FAILED = (DBAPIError, OSError, TimeoutError)


class ReplicaCatalog:
    """A `Catalog`: reads from `replica` while it answers, writes to `primary`."""

    def __init__(
        self, primary: Catalog, replica: Catalog, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.primary = primary
        self.replica = replica
        self.clock = clock
        self._down_until = 0.0
        self._recent_until = 0.0

    def wrote(self) -> None:
        """This process just wrote to the catalog: the next reads go to the primary."""
        self._recent_until = self.clock() + RECENT

    async def _read(self, read: Callable[[Catalog], Awaitable[T]]) -> T:
        now = self.clock()
        if now < self._recent_until:
            return await read(self.primary)
        if now < self._down_until:
            METRICS.read_fallback()
            return await read(self.primary)
        try:
            return await read(self.replica)
        except FAILED as exc:
            if self._down_until <= now:
                log.warning("catalog replica failed, reading from the primary: %s", one_line(exc))
            self._down_until = self.clock() + RETRY
            METRICS.read_fallback()
            return await read(self.primary)

    async def list_users(self) -> list[Record]:
        return await self._read(lambda catalog: catalog.list_users())

    async def get_user(self, user_id: str) -> Record | None:
        return await self._read(lambda catalog: catalog.get_user(user_id))

    async def list_products(self) -> list[Record]:
        return await self._read(lambda catalog: catalog.list_products())

    async def get_product(self, product_id: str) -> Record | None:
        return await self._read(lambda catalog: catalog.get_product(product_id))

    async def set_preferences(self, user_id: str, preferences: dict[str, Any]) -> Record | None:
        return (await self.set_preferences_many([(user_id, preferences)]))[0]

    async def set_preferences_many(
        self, changes: list[tuple[str, dict[str, Any]]]
    ) -> list[Record | None]:
        try:
            return await self.primary.set_preferences_many(changes)
        finally:
            self.wrote()


def primary_of(catalog: Catalog) -> Catalog:
    """The catalog that has every committed change: the primary of a `ReplicaCatalog`."""
    return catalog.primary if isinstance(catalog, ReplicaCatalog) else catalog


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()
