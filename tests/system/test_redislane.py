"""The lean Redis pipe (statebridge/db/redislane.py) against real Redis servers: the same
replies redis-py gives for the session store's scripts, batches that share the connection
without mixing up replies, error replies in place, AUTH and SELECT, and a server that
stalls, dies or is not there (redis-py's TimeoutError and ConnectionError, then a working
connection again). The private servers run on loopback ports of their own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, ConnectionError, NoScriptError, TimeoutError

from statebridge.db.redisclient import connect_redis
from statebridge.db.redislane import RedisLane
from statebridge.ops.faults.servers import free_port
from statebridge.stores.sessions.redis import SNAPSHOT, TOUCH
from tests.support.redis_topologies import NO_DISK, Node

pytestmark = pytest.mark.services

ECHO = "return {KEYS[1], ARGV[1], tonumber(ARGV[2]), {}, false, redis.call('GET', KEYS[1])}"


@contextlib.asynccontextmanager
async def both(redis_url: str) -> AsyncIterator[tuple[Redis, RedisLane]]:
    """redis-py's client and a lane to the same server and db."""
    client = connect_redis(redis_url)
    lane = RedisLane.of(client)
    assert lane is not None
    try:
        yield client, lane
    finally:
        await lane.close()
        await client.flushdb()
        await client.aclose()


@pytest.fixture
def private(tmp_path: Path) -> Iterator[Node]:
    node = Node(tmp_path / "redis", [*NO_DISK, "--requirepass", "s3cret"]).start()
    yield node
    if node.process is not None and node.alive:
        os.kill(node.process.pid, signal.SIGCONT)
    node.stop()


def lane_to(node: Node, password: str = "s3cret", db: int = 3, timeout: float = 2.0) -> RedisLane:
    lane = RedisLane.of(connect_redis(f"redis://:{password}@127.0.0.1:{node.port}/{db}"))
    assert lane is not None
    return RedisLane(replace(lane.address, timeout=timeout))


def client_of(node: Node, db: int = 3) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=node.port, password="s3cret", db=db)


async def test_script_replies_are_the_ones_redis_py_gives(redis_url: str) -> None:
    async with both(redis_url) as (client, lane):
        echo = client.register_script(ECHO)
        await client.script_load(ECHO)
        await client.set("lane:k", b"\x00v\xff")
        through_lane = await lane.call([["EVALSHA", echo.sha, 1, "lane:k", "é", 42]])
        through_redis_py = await client.evalsha(echo.sha, 1, "lane:k", "é", 42)
        assert through_lane == [through_redis_py]
        assert through_redis_py == [b"lane:k", "é".encode(), 42, [], None, b"\x00v\xff"]


async def test_the_session_scripts_answer_alike(redis_url: str) -> None:
    async with both(redis_url) as (client, lane):
        touch, snapshot = client.register_script(TOUCH), client.register_script(SNAPSHOT)
        for script in (TOUCH, SNAPSHOT):
            await client.script_load(script)
        keys = ["session:{1}:abc", "sessions:live:{1}"]
        now = int(time.time() * 1000)
        args: list[str | bytes | int] = [
            3,
            "abc",
            "user001",
            b'{"n":1}',
            now,
            now,
            now + 60_000,
            "",
            now + 60_000,
            60_000,
        ]
        assert await lane.call([["EVALSHA", snapshot.sha, 2, *keys, *args]]) == [1]
        touched: list[str | bytes | int] = [
            "EVALSHA",
            touch.sha,
            2,
            keys[1],
            keys[0],
            now + 1,
            900_000,
            60_000,
        ]
        (by_lane,) = await lane.call([touched])
        by_redis_py = await client.evalsha(touch.sha, 2, keys[1], keys[0], now + 2, 900_000, 60_000)
        fields = dict(zip(by_redis_py[0][::2], by_redis_py[0][1::2], strict=True))
        assert dict(zip(by_lane[0][::2], by_lane[0][1::2], strict=True)).keys() == fields.keys()
        assert fields[b"data"] == b'{"n":1}' and fields[b"lastMs"] == str(now + 2).encode()


async def test_an_error_reply_stays_in_its_place(redis_url: str) -> None:
    async with both(redis_url) as (_, lane):
        replies = await lane.call(
            [["SET", "lane:a", "1"], ["EVALSHA", "0" * 40, 0], ["NOSUCHCOMMAND"], ["GET", "lane:a"]]
        )
        assert replies[0] == b"OK" and replies[3] == b"1"
        assert isinstance(replies[1], NoScriptError)
        assert isinstance(replies[2], redis.ResponseError) and "unknown command" in str(replies[2])


async def test_batches_in_flight_together_get_their_own_replies(
    redis_url: str,
) -> None:
    async with both(redis_url) as (_, lane):

        async def batch(n: int) -> list[object]:
            return await lane.call(
                [["SET", f"lane:{n}", n], ["INCR", f"lane:{n}"], ["GET", f"lane:{n}"]]
            )

        results = await asyncio.gather(*(batch(n) for n in range(300)))
        assert results == [[b"OK", n + 1, str(n + 1).encode()] for n in range(300)]


async def test_auth_and_the_db_number_are_sent_first(private: Node) -> None:
    lane = lane_to(private, db=3)
    try:
        assert await lane.call([["SET", "where", "db3"], ["CLIENT", "GETNAME"]]) == [b"OK", None]
    finally:
        await lane.close()
    assert client_of(private, db=3).get("where") == b"db3"
    assert client_of(private, db=0).get("where") is None


async def test_a_wrong_password_is_an_authentication_error(private: Node) -> None:
    lane = lane_to(private, password="wrong")
    with pytest.raises(AuthenticationError, match=r"WRONGPASS|invalid"):
        await lane.call([["PING"]])
    await lane.close()


async def test_a_stalled_server_times_out_and_the_next_call_gets_its_own_reply(
    private: Node,
) -> None:
    assert private.process is not None
    lane = lane_to(private, timeout=0.3)
    try:
        await lane.call([["SET", "n", "before"]])
        os.kill(private.process.pid, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await lane.call([["GET", "n"]])
        assert time.monotonic() - started < 1.5
        os.kill(private.process.pid, signal.SIGCONT)
        # the stalled GET's reply arrives on the dropped connection, never as this answer
        assert await lane.call([["SET", "n", "after"], ["GET", "n"]]) == [b"OK", b"after"]
    finally:
        await lane.close()


async def test_a_restarted_server_is_reached_again(private: Node) -> None:
    lane = lane_to(private)
    try:
        assert await lane.call([["PING"]]) == [b"PONG"]
        private.kill()
        with pytest.raises(ConnectionError):
            await lane.call([["PING"]])
        private.start()
        assert await lane.call([["PING"]]) == [b"PONG"]
    finally:
        await lane.close()


async def test_nothing_listening_is_a_connection_error() -> None:
    lane = RedisLane.of(connect_redis(f"redis://127.0.0.1:{free_port()}/0"))
    assert lane is not None
    with pytest.raises(ConnectionError, match="Error connecting to Redis"):
        await lane.call([["PING"]])
    # calls that wait on the same attempt each get the connection error, and so do the next
    failed = await asyncio.gather(
        *(lane.call([["PING"]]) for _ in range(6)), return_exceptions=True
    )
    assert all(isinstance(error, ConnectionError) for error in failed), failed
    with pytest.raises(ConnectionError):
        await lane.call([["PING"]])
    await lane.close()


async def test_a_peer_that_does_not_speak_resp_fails_the_call_not_the_loop() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    lane = RedisLane.of(connect_redis(f"redis://127.0.0.1:{port}/0"))
    assert lane is not None
    try:
        assert await lane.call([]) == []
        with pytest.raises(ConnectionError, match="not RESP"):
            await lane.call([["PING"]])
    finally:
        await lane.close()
        server.close()
        await server.wait_closed()
