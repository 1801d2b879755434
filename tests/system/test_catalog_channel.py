"""The catalog's Redis channel (RedisChannel in statebridge/catalog/cache.py) against a real
redis-server of its own on a loopback port: a writer's `announce` returns once every
subscriber has the change, concurrent writers each get theirs, and a writer whose echo
never comes (a dropped subscription, one that no longer hears the channel) is let go
instead of hanging, with the event loop no longer watching the socket afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import redis

from statebridge.catalog import cache
from statebridge.catalog.cache import RedisChannel
from tests.support.redis_topologies import NO_DISK, Node

pytestmark = pytest.mark.services


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    node = Node(tmp_path / "redis", list(NO_DISK)).start()
    yield node
    if node.process is not None and node.alive:
        os.kill(node.process.pid, signal.SIGCONT)
    node.stop()


@contextlib.asynccontextmanager
async def subscribed(node: Node) -> AsyncIterator[tuple[RedisChannel, RedisChannel]]:
    """A writer and a reader subscribed to the same channel (made in the test's own loop:
    a channel reads its socket on the loop it subscribed on)."""
    url = f"redis://127.0.0.1:{node.port}/2"
    writer, reader = RedisChannel(url), RedisChannel(url)
    await writer.start()
    await reader.start()
    try:
        yield writer, reader
    finally:
        await writer.close()
        await reader.close()


async def stamp_now(channel: RedisChannel) -> object:
    """The stamp read afresh (a stamp read earlier in the same loop turn is kept)."""
    await asyncio.sleep(0)
    return channel.stamp()


def assert_unwatched(channel: RedisChannel) -> None:
    assert channel._watched is None and channel._echoes == []


async def heard(channel: RedisChannel, before: object) -> bool:
    """Whether the channel's stamp moves past `before` within a few seconds."""
    deadline = asyncio.get_running_loop().time() + 5
    while asyncio.get_running_loop().time() < deadline:
        if await stamp_now(channel) != before:
            return True
        await asyncio.sleep(0.001)
    return False


async def assert_heard(
    writer: RedisChannel, reader: RedisChannel, announcing: Callable[[], Awaitable[object]]
) -> None:
    """`announcing` (one announcement, or several at once): once it returns the writer has
    heard its echo and the loop watches nothing; the reader gets the change too."""
    before, mine = await stamp_now(reader), await stamp_now(writer)
    await announcing()
    assert writer.stamp() != mine  # no await in between: heard already
    assert_unwatched(writer)
    assert await heard(reader, before)


async def deafen(writer: RedisChannel) -> None:
    """Unsubscribe the writer's socket behind its back: it no longer hears the channel.
    (The UNSUBSCRIBE reply is read here, counted as one more change.)"""
    assert writer.sock is not None
    writer.sock.sendall(b"*2\r\n$11\r\nUNSUBSCRIBE\r\n$%d\r\n%s\r\n" % (
        len(writer.channel), writer.channel.encode()))  # fmt: skip
    deadline = asyncio.get_running_loop().time() + 5
    counted = writer.count
    while writer.count == counted:
        assert asyncio.get_running_loop().time() < deadline
        await stamp_now(writer)


async def test_a_writer_returns_once_its_own_subscription_heard_the_change(
    node: Node,
) -> None:
    """Redis hands a message to every subscriber in one pass, so the writer's own echo
    stands for all of them (the others' sockets get it within that pass)."""
    async with subscribed(node) as (writer, reader):
        assert writer._lane is not None  # one plain Redis: PUBLISH goes on the lean pipe
        for _ in range(50):
            await assert_heard(writer, reader, writer.announce)


async def test_announce_through_redis_py_when_there_is_no_lane(
    node: Node,
) -> None:
    """Sentinel, Cluster and rediss:// have no lane: the publisher redis-py made is used."""
    async with subscribed(node) as (writer, reader):
        await writer._lane.close()  # type: ignore[union-attr]
        writer._lane = None
        await assert_heard(writer, reader, writer.announce)


async def test_concurrent_announcements_each_return_heard(
    node: Node,
) -> None:
    async with subscribed(node) as (writer, reader):
        await assert_heard(
            writer, reader, lambda: asyncio.gather(*(writer.announce() for _ in range(20)))
        )
        # the subscriptions still work afterwards
        await assert_heard(writer, reader, writer.announce)


async def test_a_writer_whose_echo_never_comes_is_let_go(
    node: Node,
) -> None:
    """The writer's own subscription no longer hears the channel (unsubscribed behind its
    back): the announcement still reaches the others, and the writer goes on after the
    wait instead of hanging."""
    async with subscribed(node) as (writer, reader):
        await deafen(writer)
        before_reader, before_writer = await stamp_now(reader), await stamp_now(writer)
        await writer.announce()
        assert writer.stamp() == before_writer  # never heard its own message
        assert_unwatched(writer)
        assert await heard(reader, before_reader)


async def test_a_subscription_dropped_while_a_writer_waits_releases_it(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the dropped connection can wake the writer here (the wait is made long)."""
    monkeypatch.setattr(cache, "ECHO_WAIT", 60.0)
    async with subscribed(node) as (writer, _reader):
        await deafen(writer)
        admin = redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=2)

        async def drop_soon() -> None:
            while writer._watched is None:  # the writer is waiting for its echo
                await asyncio.sleep(0.001)
            clients = await asyncio.to_thread(admin.client_list)
            mine = [c["id"] for c in clients if c["name"].startswith("statebridge-catalog")]
            for client_id in mine:
                await asyncio.to_thread(admin.client_kill_filter, _id=client_id)

        dropping = asyncio.create_task(drop_soon())
        await asyncio.wait_for(writer.announce(), 30)  # a bound on a hang, not a speed
        await dropping
        # the writer was woken by the closed socket: the subscription is gone, nothing watched
        assert writer.sock is None
        assert_unwatched(writer)
        admin.close()
