"""Calls that arrive in the same event-loop turn go to a store as one batch.

Under load many requests reach the same step at once (fifty sessions read from Redis, fifty
carts read from PostgreSQL). Each round trip has a fixed client cost whatever it carries
(connection checkout, packing, a system call each way, parsing), so one round trip for many
calls costs much less per call than one each (docs/perf-history.md has the measurements).
A `Coalescer` collects the calls of one turn and hands them to `run` together; each caller
gets its own result or exception.

A caller's result comes from a round trip sent after the caller arrived, so nothing is read
stale, and a write is acknowledged only once its batch has returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Coalescer(Generic[Item, Result]):
    """`await submit(item)` -> that item's result from `run(items)`.

    `run` gets the items waiting (at most `limit`) and returns one result per item, in
    order: a value, or an exception instance for that caller alone. If `run` raises, every
    caller of the batch gets the error. At most `concurrency` batches are in flight; calls
    that arrive meanwhile wait for the next batch, so batches grow with the load (as a
    database's group commit does) instead of going out as many small ones."""

    def __init__(
        self,
        run: Callable[[list[Item]], Awaitable[Sequence[Result | BaseException]]],
        limit: int = 128,
        concurrency: int = 2,
    ) -> None:
        self.run = run
        self.limit = limit
        self.concurrency = concurrency
        self._items: list[Item] = []
        self._futures: list[asyncio.Future[Result]] = []
        self._in_flight = 0
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # strong references while they run

    async def submit(self, item: Item) -> Result:
        return await self.enqueue(item)

    def enqueue(self, item: Item) -> asyncio.Future[Result]:
        """Join the next batch now; await the future for the result (lets a caller start
        this call and another one before waiting for either)."""
        if not self._items or self._loop is None:
            # once per batch: on Python 3.11 asking for the running loop is a getpid() system
            # call, a measurable cost when made on every call (docs/perf-history.md)
            self._loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = self._loop.create_future()
        self._items.append(item)
        self._futures.append(future)
        self._schedule()
        return future

    def _schedule(self) -> None:
        if self._scheduled or not self._items or self._in_flight >= self.concurrency:
            return
        self._scheduled = True
        assert self._loop is not None
        self._loop.call_soon(self._flush)  # after this turn's callers joined

    def _flush(self) -> None:
        self._scheduled = False
        while self._items and self._in_flight < self.concurrency:
            items, futures = self._items[: self.limit], self._futures[: self.limit]
            del self._items[: self.limit], self._futures[: self.limit]
            self._in_flight += 1
            assert self._loop is not None
            task = self._loop.create_task(self._deliver(items, futures))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, items: list[Item], futures: list[asyncio.Future[Result]]) -> None:
        try:
            results = await self.run(items)
        except BaseException as exc:  # every caller gets the error; nobody awaits this task
            error = exc if isinstance(exc, Exception) else RuntimeError(repr(exc))
            for future in futures:
                if not future.done():
                    future.set_exception(error)
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            self._in_flight -= 1
            self._schedule()
        for future, result in zip(futures, results, strict=True):
            if future.done():  # the caller gave up (its request was cancelled)
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)


def rounds(keys: Sequence[object]) -> list[list[int]]:
    """Indexes of a batch split so that no round holds one key twice: the first call of
    every key, then the second, and so on, in arrival order (one statement cannot change a
    row twice, and a key's calls must apply in the order they came)."""
    split: list[list[int]] = []
    seen: dict[object, int] = {}
    for index, key in enumerate(keys):
        depth = seen.get(key, 0)
        seen[key] = depth + 1
        if depth == len(split):
            split.append([])
        split[depth].append(index)
    return split
