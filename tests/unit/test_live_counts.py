"""/health's counts: kept for a second, counted once for concurrent readers, and counted
again at once after a change made through this process."""

from __future__ import annotations

import asyncio

from statebridge.stores.counts import LiveCounts


class Store:
    def __init__(self) -> None:
        self.sessions = 0
        self.carts = 0
        self.asked = 0
        self.gate: asyncio.Event | None = None

    async def count(self) -> int:
        self.asked += 1
        if self.gate is not None:
            await self.gate.wait()
        return self.sessions

    async def count_active(self) -> int:
        return self.carts


async def settle() -> None:
    """Let every task that can run, run."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_reads_within_max_age_ask_the_stores_once() -> None:
    async def scenario() -> None:
        store = Store()
        store.sessions, store.carts = 3, 1
        counts = LiveCounts(store, store, max_age=60)
        assert [await counts.read() for _ in range(50)] == [(3, 1)] * 50
        assert store.asked == 1
        store.sessions = 4  # another instance's change: seen after max_age, not before
        assert await counts.read() == (3, 1)

    asyncio.run(scenario())


def test_a_local_change_is_counted_by_the_next_read() -> None:
    async def scenario() -> None:
        store = Store()
        counts = LiveCounts(store, store, max_age=60)
        assert await counts.read() == (0, 0)
        store.sessions, store.carts = 1, 1
        counts.changed()
        assert await counts.read() == (1, 1)
        assert store.asked == 2

    asyncio.run(scenario())


def test_concurrent_readers_share_one_count_and_a_change_meanwhile_is_not_missed() -> None:
    async def scenario() -> None:
        store = Store()
        store.gate = asyncio.Event()
        counts = LiveCounts(store, store, max_age=60)
        early = [asyncio.ensure_future(counts.read()) for _ in range(10)]
        await settle()
        assert store.asked == 1  # ten readers, one count in flight
        store.sessions = 1
        counts.changed()  # made while that count ran: it may not include it
        late = asyncio.ensure_future(counts.read())
        await settle()
        assert store.asked == 2  # so a reader after the change starts its own
        store.gate.set()
        await asyncio.gather(*early)
        assert await late == (1, 0)
        assert await counts.read() == (1, 0)  # the count begun after the change is kept
        assert store.asked == 2

    asyncio.run(scenario())
