"""The coalescer: calls of one event-loop turn go out together, each gets its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from statebridge.batching import Coalescer


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    async def run(self, items: list[int]) -> Sequence[int | BaseException]:
        self.batches.append(items)
        await asyncio.sleep(0)
        return [ValueError(f"odd {item}") if item % 2 else item * 10 for item in items]


async def test_callers_of_one_turn_share_a_batch_and_get_their_own_results() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder.run)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(6)), return_exceptions=True)
    assert recorder.batches == [[0, 1, 2, 3, 4, 5]]
    assert results[0::2] == [0, 20, 40]
    assert [str(error) for error in results[1::2]] == ["odd 1", "odd 3", "odd 5"]


async def test_a_later_turn_makes_a_new_batch() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder.run)
    assert await coalescer.submit(2) == 20
    assert await asyncio.gather(coalescer.submit(4), coalescer.submit(6)) == [40, 60]
    assert recorder.batches == [[2], [4, 6]]


async def test_the_limit_splits_a_batch() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder.run, limit=4)
    results = await asyncio.gather(*(coalescer.submit(i * 2) for i in range(10)))
    assert results == [i * 20 for i in range(10)]
    assert [len(batch) for batch in recorder.batches] == [4, 4, 2]


async def test_a_failed_round_trip_fails_every_caller_of_the_batch() -> None:
    async def broken(items: list[int]) -> Sequence[int]:
        raise ConnectionError("store down")

    coalescer: Coalescer[int, int] = Coalescer(broken)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)
    with pytest.raises(ConnectionError):  # and the next caller is not stuck behind it
        await coalescer.submit(9)


async def test_a_caller_that_gave_up_does_not_disturb_the_others() -> None:
    release = asyncio.Event()

    async def slow(items: list[int]) -> Sequence[int]:
        await release.wait()
        return items

    coalescer: Coalescer[int, int] = Coalescer(slow)
    quitter = asyncio.ensure_future(coalescer.submit(1))
    stayer = asyncio.ensure_future(coalescer.submit(2))
    await asyncio.sleep(0.01)
    quitter.cancel()
    release.set()
    assert await stayer == 2
    assert quitter.cancelled()
