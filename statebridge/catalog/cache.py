"""The catalog (users, products) held in process, dropped whenever any instance changes it.

Every GET /users, GET /products and cart answer reads the catalog. It is small and changes
only when someone saves their preferences, so each process keeps a copy instead of asking
the database on every request. The copy is used only while a cheap local check (no round
trip) says nothing changed since it was loaded; how instances tell each other depends on
what they share:

- Redis (REDIS_URL): a pub/sub channel. The subscriber is a plain non-blocking socket that
  is read with one `recv` before each cached answer. A writer publishes before it answers,
  and Redis has handed the message to every subscriber's socket by then, so the next
  request on any instance sees the change. While the subscription is down, the cache is
  bypassed (every read goes to the database) until it is back. Through Sentinel the
  subscription goes to the master the sentinels name at each (re)connection; in a Cluster
  to any node of REDIS_URL that answers, since a classic PUBLISH reaches every node.
- one SQLite file (the embedded default, maybe shared by `--workers`): a counter in a small
  file beside the database, bumped after each write and read with one `pread`.
- PostgreSQL without Redis: LISTEN/NOTIFY on a dedicated connection (to DATABASE_DIRECT_URL
  behind a transaction pooler, where LISTEN does not work; without one the cache is off).
- nothing shared (an in-memory database): the process's own writes drop its copy.

Whatever the channel, a copy is also reloaded after `max_age` seconds, so rows changed
behind statebridge's back (by hand, in SQL) show up without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from statebridge.batching import Coalescer
from statebridge.catalog.replica import primary_of
from statebridge.catalog.repository import Catalog, Record
from statebridge.config import redis_address
from statebridge.db.redisclient import connect_redis, subscriber_addresses
from statebridge.db.redislane import RedisLane, pack
from statebridge.observability.metrics import METRICS

log = logging.getLogger("statebridge.catalog")
Stamp = object
CLIENT_NAME = "statebridge-catalog"
ECHO_WAIT = 0.25  # seconds a writer waits to hear its own announcement
ACK_WAIT = 1.0  # seconds a writer waits for every PostgreSQL listener's acknowledgement


class Invalidation(Protocol):
    """How one process learns that another one changed the catalog."""

    async def start(self) -> None: ...

    def stamp(self) -> Stamp | None:
        """A token that changes whenever the catalog may have changed; None: cannot tell now."""
        ...

    async def announce(self) -> None:
        """Tell every instance (this one included) that the catalog changed."""
        ...

    async def close(self) -> None: ...


class LocalOnly:
    """One process alone: its own writes are the only ones (CachedCatalog tracks those)."""

    async def start(self) -> None:
        return None

    def stamp(self) -> Stamp | None:
        return 0

    async def announce(self) -> None:
        return None

    async def close(self) -> None:
        return None


class FileCounter:
    """A 20-digit counter in a file beside the SQLite database, shared by forked workers.

    Readers keep the file open and `pread` it (one system call); writers bump it under an
    exclusive `flock`, so two writers never both write the same next value."""

    WIDTH = 20

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    async def start(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)

    def stamp(self) -> Stamp | None:
        if self.fd is None:
            return None
        try:
            return os.pread(self.fd, self.WIDTH, 0)
        except OSError:
            return None

    async def announce(self) -> None:
        if self.fd is None:
            return
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            current = os.pread(self.fd, self.WIDTH, 0).strip() or b"0"
            value = int(current) + 1 if current.isdigit() else 1
            os.pwrite(self.fd, str(value).zfill(self.WIDTH).encode("ascii"), 0)
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    async def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


@dataclass
class RedisTarget:
    """Where a redis:// or unix:// URL points, for a plain socket."""

    family: int
    address: Any
    username: str | None
    password: str | None
    db: int
    url: str = ""  # redis+sentinel:// or redis+cluster://: where `resolve` looks

    async def resolve(self) -> list[RedisTarget]:
        """The servers to subscribe at, in turn: this one; the master the sentinels name
        now; or every node given for a cluster (a classic PUBLISH reaches every node)."""
        if not self.url:
            return [self]
        return [
            replace(self, family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                    address=(host, port), url="")
            for host, port in await subscriber_addresses(self.url)
        ]  # fmt: skip

    @classmethod
    def parse(cls, url: str) -> RedisTarget | None:
        """None for what a plain socket cannot speak (rediss://: TLS)."""
        if url.startswith(("redis+sentinel://", "redis+cluster://")):
            address = redis_address(url)
            return cls(socket.AF_INET, None, address.username, address.password, address.db, url)
        parts = urlsplit(url)
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        query = dict(pair.split("=", 1) for pair in parts.query.split("&") if "=" in pair)
        if parts.scheme == "redis":
            path = parts.path.strip("/")
            db = int(path) if path.isdigit() else int(query.get("db", "0") or 0)
            host = parts.hostname or "localhost"
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            return cls(family, (host, parts.port or 6379), username, password, db)
        if parts.scheme == "unix":
            db = int(query.get("db", "0") or 0)
            return cls(socket.AF_UNIX, parts.path, username, password, db)
        return None


class RedisChannel:
    """Pub/sub over a plain socket that the event loop never watches.

    After SUBSCRIBE nothing but published messages arrive on it, so any byte read means
    "changed": no parsing on the hot path, just a non-blocking `recv`. Only a writer waiting
    for its own announcement to come back has the loop watch the socket, until it does.

    That `recv` is made at most once per turn of the event loop: a stamp read in this turn
    is kept until a callback queued behind it (`call_soon`) runs. Still nothing is missed.
    A writer answers only once its own subscription heard the message, so the message is in
    this socket before any request that follows the writer's answer arrives; the handle of
    such a request is queued after the callback of any check made before that, so by the
    time the request reads the stamp the old one is forgotten and the socket read again.
    (Made on every lookup, the recv and the GIL hand-off around it were a measurable share
    of a stateful request: docs/perf-history.md.)"""

    RETRY_SECONDS = 1.0

    def __init__(self, url: str, publisher: Any = None) -> None:
        self.url = url
        self.target = RedisTarget.parse(url)
        db = self.target.db if self.target else 0
        self.channel = f"statebridge:catalog:{db}"
        self._publisher = publisher
        self._own_publisher = publisher is None
        self.sock: socket.socket | None = None
        self.count = 0
        self._retry_at = 0.0
        self._connecting: asyncio.Task[None] | None = None
        self._fresh = False  # the socket was read in this turn of the loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lane: RedisLane | None = None  # PUBLISH on the lean pipe, where there is one
        self._echoes: list[asyncio.Future[None]] = []  # writers waiting to hear a message
        self._watched: socket.socket | None = None  # the socket the loop watches for them

    async def start(self) -> None:
        if self.target is None:
            log.warning("catalog cache off: cannot subscribe over %s", urlsplit(self.url).scheme)
            return
        if self._publisher is None:
            self._publisher = connect_redis(self.url, max_connections=4)
        self._lane = RedisLane.of(self._publisher)
        await self._connect()

    async def _connect(self) -> None:
        """Subscribe at the first address that answers (after failover or a lost cluster
        node, the next one: see `RedisTarget.resolve`)."""
        target = self.target
        assert target is not None
        try:
            targets = await target.resolve()
        except Exception as exc:  # no sentinel answered: try again later
            self._retry_at = time.monotonic() + self.RETRY_SECONDS
            log.warning("catalog cache bypassed: cannot find the Redis master (%s)", exc)
            return
        for candidate in targets:
            if await self._subscribe(candidate, last=candidate is targets[-1]):
                return

    async def _subscribe(self, target: RedisTarget, last: bool) -> bool:
        sock = socket.socket(target.family, socket.SOCK_STREAM)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            if target.family != socket.AF_UNIX:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            await asyncio.wait_for(loop.sock_connect(sock, target.address), 2.0)
            if target.password:
                auth = [target.username, target.password] if target.username else [target.password]
                await loop.sock_sendall(sock, pack(["AUTH", *auth]))
                await self._expect(sock, b"+OK\r\n")
            name = f"{CLIENT_NAME}-{os.getpid()}"  # CLIENT LIST tells whose it is
            await loop.sock_sendall(sock, pack(["CLIENT", "SETNAME", name]))
            await self._expect(sock, b"+OK\r\n")
            await loop.sock_sendall(sock, pack(["SUBSCRIBE", self.channel]))
            channel = self.channel.encode()
            confirm = b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(channel), channel)
            await self._expect(sock, confirm)
        except (OSError, TimeoutError, ValueError) as exc:
            sock.close()
            if last:
                self._retry_at = time.monotonic() + self.RETRY_SECONDS
                log.warning("catalog cache bypassed: cannot subscribe to Redis (%s)", exc)
            return False
        self.sock = sock
        self._loop = loop
        self._fresh = False
        self.count += 1  # whatever happened while we were away
        return True

    @staticmethod
    async def _expect(sock: socket.socket, wanted: bytes) -> None:
        loop = asyncio.get_running_loop()
        got = b""
        while len(got) < len(wanted):
            chunk = await asyncio.wait_for(loop.sock_recv(sock, len(wanted) - len(got)), 2.0)
            if not chunk:
                raise ValueError("connection closed")
            got += chunk
            if not wanted.startswith(got):
                raise ValueError(got.decode(errors="replace").strip())

    def _lost(self) -> None:
        self._fresh = False
        self._heard()  # nothing more will come on this socket: waiting writers go on
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            log.warning("catalog cache bypassed: lost the Redis subscription")
        self._retry_at = time.monotonic() + self.RETRY_SECONDS

    def _reconnect_soon(self) -> None:
        if self.target is None or time.monotonic() < self._retry_at:
            return
        if self._connecting is None or self._connecting.done():
            self._retry_at = time.monotonic() + self.RETRY_SECONDS
            self._connecting = asyncio.get_running_loop().create_task(self._connect())

    def stamp(self) -> Stamp | None:
        if self._fresh:
            return self.count
        sock = self.sock
        if sock is None:
            self._reconnect_soon()
            return None
        while True:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                if self._loop is not None:
                    self._fresh = True
                    self._loop.call_soon(self._forget)
                return self.count
            except OSError:
                self._lost()
                return None
            if not data:
                self._lost()
                return None
            self.count += 1
            if self._echoes:
                self._heard()

    def _forget(self) -> None:
        self._fresh = False

    def _heard(self) -> None:
        """Something arrived (or the socket is gone): every writer waiting goes on, and the
        loop stops watching the socket."""
        self._unwatch()
        echoes, self._echoes = self._echoes, []
        for echo in echoes:
            settle(echo)

    def _readable(self) -> None:
        self._fresh = False
        self.stamp()  # reads what came: counts it and wakes the writers

    def _unwatch(self) -> None:
        watched, self._watched = self._watched, None
        if watched is not None and self._loop is not None:
            self._loop.remove_reader(watched)

    async def _publish(self) -> None:
        assert self._publisher is not None
        if self._lane is None:
            await self._publisher.publish(self.channel, b"1")
            return
        reply = (await self._lane.call([["PUBLISH", self.channel, "1"]]))[0]
        if isinstance(reply, Exception):
            raise reply

    async def announce(self) -> None:
        """Publish, then wait (briefly) until our own subscription hears it: Redis writes a
        message to every subscriber in the same pass, so by then all of them have it. The
        wait is the loop watching the socket, woken by the first byte (no polling)."""
        if self._publisher is None:
            return
        self._fresh = False
        self.stamp()  # what came before this change is not its echo
        before = self.count
        for attempt in (1, 2):
            try:
                await self._publish()
                break
            except Exception as exc:  # redis-py raises several families
                if attempt == 2:
                    log.warning("could not announce a catalog change: %s", exc)
                    return
        self._fresh = False
        if self.stamp() != before or self.sock is None or self._loop is None:
            return
        echo: asyncio.Future[None] = self._loop.create_future()
        self._echoes.append(echo)
        if self._watched is None:
            self._watched = self.sock
            self._loop.add_reader(self.sock, self._readable)
        # not heard in time (a stalled Redis): go on; other instances' copies expire anyway
        late = self._loop.call_later(ECHO_WAIT, settle, echo)
        try:
            await echo
        finally:
            late.cancel()
            if echo in self._echoes:
                self._echoes.remove(echo)
            if not self._echoes:
                self._unwatch()

    async def close(self) -> None:
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        self._heard()
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self._lane is not None:
            await self._lane.close()
        if self._own_publisher and self._publisher is not None:
            await self._publisher.aclose()


def settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class PgNotify:
    """LISTEN/NOTIFY on one dedicated asyncpg connection (PostgreSQL without Redis).

    PostgreSQL signals every listening backend at the commit, but each backend then sends
    the notification to its instance on its own schedule, so hearing our own echo does not
    mean the other instances have it (under load, a request could reach one before its
    notification). So every instance acknowledges a change it hears from another one, and
    a writer answers once every listener counted in `pg_stat_activity` (by application
    name) acknowledged, or after `ACK_WAIT`."""

    CHANNEL = "statebridge_catalog"
    ACKS = "statebridge_catalog_ack"
    APPLICATION = "statebridge-catalog"

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn: Any = None
        self.count = 0
        self.origin = uuid.uuid4().hex[:12]
        self._lock = asyncio.Lock()
        self._echoes: dict[str, tuple[asyncio.Future[None], list[int]]] = {}
        self._retry_at = 0.0
        self._connecting: asyncio.Task[None] | None = None
        self._acking: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self._connect()

    async def _connect(self) -> None:
        import asyncpg  # type: ignore[import-untyped]

        try:
            conn = await asyncpg.connect(
                self.dsn, timeout=5, server_settings={"application_name": self.APPLICATION}
            )
            await conn.add_listener(self.CHANNEL, self._notified)
            await conn.add_listener(self.ACKS, self._acknowledged)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            self._retry_at = time.monotonic() + 1.0
            log.warning("catalog cache bypassed: cannot LISTEN (%s)", exc)
            return
        conn.add_termination_listener(self._terminated)
        self.conn = conn
        self.count += 1

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.count += 1
        origin, _, token = payload.partition(":")
        if origin == self.origin:
            self._heard(token, own=True)
        elif token:
            task = asyncio.get_running_loop().create_task(self._acknowledge(token))
            self._acking.add(task)
            task.add_done_callback(self._acking.discard)

    async def _acknowledge(self, token: str) -> None:
        try:
            async with self._lock:
                if self.conn is not None:
                    await self.conn.execute("SELECT pg_notify($1, $2)", self.ACKS, token)
        except Exception as exc:  # the writer stops waiting after ACK_WAIT anyway
            log.debug("catalog acknowledgement not sent: %s", exc)

    def _acknowledged(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._heard(payload, own=False)

    def _heard(self, token: str, own: bool) -> None:
        entry = self._echoes.get(token)
        if entry is None:
            return
        waiter, missing = entry
        missing[0 if own else 1] -= 1
        if missing[0] <= 0 and missing[1] <= 0 and not waiter.done():
            waiter.set_result(None)

    def _terminated(self, *_args: Any) -> None:
        self.conn = None
        self._retry_at = time.monotonic() + 1.0

    def stamp(self) -> Stamp | None:
        if self.conn is None or self.conn.is_closed():
            self.conn = None
            if time.monotonic() >= self._retry_at and (
                self._connecting is None or self._connecting.done()
            ):
                self._retry_at = time.monotonic() + 1.0
                self._connecting = asyncio.get_running_loop().create_task(self._connect())
            return None
        return self.count

    async def announce(self) -> None:
        """NOTIFY, then wait (briefly) until our own listener heard it and every other
        listener acknowledged it."""
        if self.conn is None:
            return
        token = uuid.uuid4().hex
        heard = asyncio.get_running_loop().create_future()
        missing = [1, 0]  # our own echo, the other listeners' acknowledgements
        self._echoes[token] = (heard, missing)
        try:
            async with self._lock:
                listeners = await self.conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE application_name = $1 AND datname = current_database()",
                    self.APPLICATION,
                )
                missing[1] += int(listeners) - 1
                await self.conn.execute(
                    "SELECT pg_notify($1, $2)", self.CHANNEL, f"{self.origin}:{token}"
                )
            await asyncio.wait_for(heard, ACK_WAIT)
        except Exception as exc:  # a lost connection or a slow echo: the cache copes
            log.debug("catalog announcement not confirmed: %s", exc)
        finally:
            self._echoes.pop(token, None)

    async def close(self) -> None:
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        for task in list(self._acking):
            task.cancel()
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.close(timeout=2)
            self.conn = None


@dataclass
class Snapshot:
    users: list[Record]
    products: list[Record]
    key: tuple[int, Stamp]
    expires: float
    users_by_id: dict[str, Record] = field(default_factory=dict)
    products_by_id: dict[str, Record] = field(default_factory=dict)
    prices: dict[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.users_by_id = {user["id"]: user for user in self.users}
        self.products_by_id = {product["id"]: product for product in self.products}
        self.prices = {product["id"]: Decimal(repr(product["price"])) for product in self.products}


class CachedCatalog:
    """A `Catalog` that answers reads from a snapshot while the invalidation channel allows.

    Records handed out are shared with the cache: callers must not modify them."""

    def __init__(
        self,
        inner: Catalog,
        invalidation: Invalidation | None = None,
        max_age: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.invalidation: Invalidation = invalidation or LocalOnly()
        self.max_age = max_age
        self.clock = clock
        self.generation = 0  # bumped by this process's own writes
        self.loads = 0
        self._loaded_key: tuple[int, Stamp] | None = None  # of the last load
        self._snapshot: Snapshot | None = None
        self._loading: tuple[tuple[int, Stamp], asyncio.Future[Snapshot]] | None = None
        # one batch at a time: two in flight would wait on each other's row locks (most
        # changes are to few users) and each commit alone
        self._preferences: Coalescer[tuple[str, dict[str, Any]], Record | None] = Coalescer(
            self.set_preferences_many, concurrency=1
        )

    async def start(self) -> None:
        await self.invalidation.start()

    async def close(self) -> None:
        await self.invalidation.close()

    async def snapshot(self) -> Snapshot | None:
        """The current snapshot, loaded if needed; None while changes cannot be tracked."""
        stamp = self.invalidation.stamp()
        if stamp is None:
            METRICS.cache_lookup("catalog", False)
            return None
        key = (self.generation, stamp)
        snap = self._snapshot
        if snap is not None and snap.key == key and self.clock() < snap.expires:
            METRICS.cache_lookup("catalog", True)
            return snap
        METRICS.cache_lookup("catalog", False)
        loading = self._loading
        if loading is not None and loading[0] == key and not loading[1].done():
            return await asyncio.shield(loading[1])
        future: asyncio.Future[Snapshot] = asyncio.get_running_loop().create_future()
        self._loading = (key, future)
        try:
            snap = await self._load(key)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # retrieved: joiners get it, nobody else needs to
            raise
        finally:
            if self._loading is not None and self._loading[1] is future:
                self._loading = None
        future.set_result(snap)
        return snap

    async def _load(self, key: tuple[int, Stamp]) -> Snapshot:
        # a reload because of a known change reads the primary, never a lagging replica
        changed = self._loaded_key is not None and key != self._loaded_key
        source = primary_of(self.inner) if changed else self.inner
        users = await source.list_users()
        products = await source.list_products()
        self._loaded_key = key
        self.loads += 1
        snap = Snapshot(users, products, key, self.clock() + self.max_age)
        if key == (self.generation, self.invalidation.stamp()):
            self._snapshot = snap  # nothing changed while we read: keep it
        return snap

    def drop(self) -> None:
        self.generation += 1
        self._snapshot = None

    async def list_users(self) -> list[Record]:
        snap = await self.snapshot()
        return snap.users if snap is not None else await self.inner.list_users()

    async def get_user(self, user_id: str) -> Record | None:
        snap = await self.snapshot()
        if snap is not None:
            user = snap.users_by_id.get(user_id)
            if user is not None or "\x00" in user_id:
                return user
        return await self.inner.get_user(user_id)

    async def list_products(self) -> list[Record]:
        snap = await self.snapshot()
        return snap.products if snap is not None else await self.inner.list_products()

    async def get_product(self, product_id: str) -> Record | None:
        snap = await self.snapshot()
        if snap is not None:
            product = snap.products_by_id.get(product_id)
            if product is not None or "\x00" in product_id:
                return product
        return await self.inner.get_product(product_id)

    async def product_lines(self, product_ids: set[str]) -> dict[str, tuple[str, Decimal]]:
        """Name and exact price of each product, for cart lines (missing ids are left out)."""
        snap = await self.snapshot()
        lines: dict[str, tuple[str, Decimal]] = {}
        for product_id in product_ids:
            if snap is not None and product_id in snap.prices:
                lines[product_id] = (
                    snap.products_by_id[product_id]["name"],
                    snap.prices[product_id],
                )
                continue
            product = await self.inner.get_product(product_id)
            if product is not None:
                lines[product_id] = (product["name"], Decimal(repr(product["price"])))
        return lines

    async def set_preferences(self, user_id: str, preferences: dict[str, Any]) -> Record | None:
        return await self._preferences.submit((user_id, preferences))

    async def set_preferences_many(
        self, changes: list[tuple[str, dict[str, Any]]]
    ) -> list[Record | None]:
        """The changes that arrive together: one transaction, then one drop of the copy and
        one announcement to the other instances for all of them (not one each)."""
        try:
            return await self.inner.set_preferences_many(changes)
        finally:
            self.drop()
            await self.invalidation.announce()


class Unheard:
    """No channel can be heard (PostgreSQL behind a transaction pooler, with neither Redis
    nor a direct URL to LISTEN on): the cache stays bypassed, every read asks the database."""

    async def start(self) -> None:
        log.warning(
            "catalog cache off: LISTEN does not work through a transaction pooler; "
            "set REDIS_URL or DATABASE_DIRECT_URL to cache the catalog"
        )

    def stamp(self) -> Stamp | None:
        return None

    async def announce(self) -> None:
        return None

    async def close(self) -> None:
        return None


def build_invalidation(
    database_url: str, redis_url: str, listen_url: str | None = None
) -> Invalidation:
    """The cheapest channel that every instance sharing this database also listens on.
    `listen_url`: where PostgreSQL's LISTEN goes when it is not `database_url` ("": nowhere,
    as behind a transaction pooler without a direct URL)."""
    if redis_url:
        return RedisChannel(redis_url)
    if database_url.startswith("sqlite"):
        from statebridge.db.engine import sqlite_path

        path = sqlite_path(database_url)
        return FileCounter(Path(f"{path}.catalog-version")) if path else LocalOnly()
    if database_url.startswith("postgresql"):
        from sqlalchemy.engine import make_url

        url = database_url if listen_url is None else listen_url
        if not url:
            return Unheard()
        dsn = make_url(url).set(drivername="postgresql")
        return PgNotify(dsn.render_as_string(hide_password=False))
    return LocalOnly()
