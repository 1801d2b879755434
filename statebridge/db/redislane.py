"""A lean pipe to one Redis server for the session store's hot calls.

A session read is one EVALSHA and a session write two; through redis-py's asyncio client
each call also takes a pooled connection, runs its command through the encoder, a timeout
context, stream reader and writer, and gives the connection back: a large share of a
request's CPU (docs/benchmarks.md, "Where a write's CPU goes"). This module sends the same
commands over one connection of its own, packed by hand, and parses the replies with
hiredis, the C parser redis-py uses too. Replies come back in order, so the calls of
several batches share the connection without waiting for each other (pipelining).

It is used only where it is equivalent: one plain Redis reached over TCP or a Unix socket,
without TLS (`RedisLane.of` says None otherwise, and the store keeps using redis-py:
Sentinel, Cluster, rediss://). Its failures are redis-py's exceptions (ConnectionError,
TimeoutError, ResponseError, NoScriptError), so the store's circuit breaker and its
NOSCRIPT retry treat them the same. A call that times out drops the connection (its reply
would otherwise answer the next call); the next call connects again.

What it leans on, checked by tests/unit/test_redislane.py and tests/system/test_redislane.py:
hiredis's Reader (replyError, gets() returning False when a reply is incomplete) and the
`connection_kwargs` redis-py keeps for a client made by `Redis.from_url`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import (
    AuthenticationError,
    ConnectionError,
    NoScriptError,
    ResponseError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

Command = Sequence[str | bytes | int]


def pack(command: Command) -> bytes:
    """One command in RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(command)]
    for part in command:
        data = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def raised(reply: Any) -> Any:
    """A reply, or the exception redis-py would raise for it."""
    if isinstance(reply, ResponseError) and str(reply).startswith("NOSCRIPT"):
        return NoScriptError(str(reply))
    return reply


@dataclass(frozen=True)
class Address:
    host: str
    port: int
    path: str | None  # a Unix socket, instead of host and port
    username: str | None
    password: str | None
    db: int
    timeout: float
    connect_timeout: float


class _Waiting:
    __slots__ = ("future", "left", "replies")

    def __init__(self, future: asyncio.Future[list[Any]], count: int) -> None:
        self.future = future
        self.left = count
        self.replies: list[Any] = []


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader(replyError=ResponseError)
        self.waiting: deque[_Waiting] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        waiting = self.waiting
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:  # not RESP: nothing after it can be trusted
                self.fail(ConnectionError(f"Redis sent something that is not RESP: {exc}"))
                return
            if reply is False:
                return
            if not waiting:  # nothing asked for it: the stream is out of step
                self.fail(ConnectionError("Redis sent a reply nobody asked for"))
                return
            head = waiting[0]
            head.replies.append(reply)
            head.left -= 1
            if head.left == 0:
                waiting.popleft()
                if not head.future.done():
                    head.future.set_result(head.replies)

    def fail(self, exc: BaseException) -> None:
        if self.lost is None:
            self.lost = exc
        while self.waiting:
            head = self.waiting.popleft()
            if not head.future.done():
                head.future.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(ConnectionError(f"Redis closed the connection: {exc or 'end of stream'}"))


class RedisLane:
    """One pipelined connection to one Redis; `call` sends a batch of commands."""

    def __init__(self, address: Address) -> None:
        self.address = address
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    @classmethod
    def of(cls, redis: Redis) -> RedisLane | None:
        """A lane to the server this client talks to, if it is one plain Redis."""
        pool = getattr(redis, "connection_pool", None)
        kind = getattr(pool, "connection_class", None)
        if kind not in (Connection, UnixDomainSocketConnection) or pool is None:
            return None
        options = pool.connection_kwargs
        return cls(
            Address(
                host=str(options.get("host", "localhost")),
                port=int(options.get("port", 6379)),
                path=options.get("path") if kind is UnixDomainSocketConnection else None,
                username=options.get("username"),
                password=options.get("password"),
                db=int(options.get("db") or 0),
                timeout=float(options.get("socket_timeout") or 2.0),
                connect_timeout=float(options.get("socket_connect_timeout") or 1.0),
            )
        )

    async def call(self, commands: Sequence[Command]) -> list[Any]:
        """Send the commands at once; their replies, in order. An error reply comes back as
        its exception object (as redis-py's pipeline gives it with raise_on_error=False)."""
        if not commands:
            return []
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            protocol = await self._connect()
        return await self._send(protocol, commands)

    async def _send(self, protocol: _Protocol, commands: Sequence[Command]) -> list[Any]:
        assert protocol.transport is not None
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        protocol.waiting.append(_Waiting(future, len(commands)))
        protocol.transport.write(b"".join([pack(command) for command in commands]))
        try:
            replies = await asyncio.wait_for(future, self.address.timeout)
        except TimeoutError:  # asyncio's, the builtin one
            protocol.fail(RedisTimeoutError("Timeout reading from Redis"))
            raise RedisTimeoutError("Timeout reading from Redis") from None
        return [raised(reply) for reply in replies]

    async def _connect(self) -> _Protocol:
        """The connection being opened, shared by the calls that arrive meanwhile; once an
        attempt has ended (failed, or its connection since lost) the next call makes one."""
        connecting = self._connecting
        if connecting is None or connecting.done():
            connecting = self._connecting = asyncio.ensure_future(self._open())
        return await asyncio.shield(connecting)

    async def _open(self) -> _Protocol:
        address = self.address
        loop = asyncio.get_running_loop()
        try:
            if address.path:
                opening = loop.create_unix_connection(_Protocol, address.path)
            else:
                opening = loop.create_connection(_Protocol, address.host, address.port)
            _, protocol = await asyncio.wait_for(opening, address.connect_timeout)
        except (OSError, TimeoutError) as exc:
            where = address.path or f"{address.host}:{address.port}"
            raise ConnectionError(f"Error connecting to Redis at {where}: {exc}") from None
        hello: list[Command] = []
        if address.password:
            user = [address.username] if address.username else []
            hello.append(["AUTH", *user, address.password])
        if address.db:
            hello.append(["SELECT", address.db])
        for reply in await self._send(protocol, hello) if hello else []:
            if isinstance(reply, ResponseError):
                protocol.fail(ConnectionError(str(reply)))
                if "WRONGPASS" in str(reply) or "AUTH" in str(reply).upper():
                    raise AuthenticationError(str(reply))
                raise ConnectionError(str(reply))
        self._protocol = protocol
        return protocol

    async def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.fail(ConnectionError("Redis lane closed"))
