"""The floor: the least one Python process on statebridge's own stack spends per request.

A bare ASGI app served by Granian (no middleware, no routing, no envelope), reaching
PostgreSQL through statebridge's asyncpg pool and Redis through its redis-py client, every
call batched per event-loop turn with statebridge's `Coalescer`. Its routes, all GETs with
no body (so nothing to parse):

- `/http`: a fixed answer; the HTTP server and the event loop alone.
- `/redis`: one key read from Redis.
- `/postgres`: one row updated in PostgreSQL, committed (durable) before the answer.
- `/save`: a record committed to PostgreSQL, then written to Redis (a write that needs
  nothing read first, as one UPDATE ... RETURNING would read and write in one statement).
- `/write`: what a session write does here: the record read from Redis, changed, written
  to PostgreSQL (committed) and then to Redis.

`statebridge bench --url <floor> --endpoints /http,/redis,/postgres,/save,/write --pid <its pid>`
measures it; set against statebridge's routes and Phase 1 on the same machine, it says how
much of statebridge's CPU per request is its own code and how much the stack's
(docs/benchmarks.md, "The floor"). It keeps ROWS rows in a table of its own and as many
Redis keys, made at start and removed at a clean stop.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.types import Message, Receive, Scope, Send

from statebridge.batching import Coalescer
from statebridge.config import Settings
from statebridge.db.redisclient import connect_redis
from statebridge.stores.pgpool import PgPool

ROWS = 2000  # as many as the bench's live sessions by default
TABLE = "statebridge_bench_floor"
PREFIX = "statebridge:bench-floor:"
RECORD = {
    "userId": "user-1",
    "data": {"theme": "dark", "language": "en", "visits": 0},
    "cart": [],
    "createdAt": "2026-01-01T00:00:00.000Z",
    "lastAccess": "2026-01-01T00:00:00.000Z",
}  # about the size of a session record
ANSWER = orjson.dumps({"success": True, "message": "floor"})
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]
UPDATE = (
    f"UPDATE {TABLE} SET record = changed.record "
    f"FROM unnest($1::int[], $2::text[]) AS changed(id, record) WHERE {TABLE}.id = changed.id"
)
NEEDS = "bench-floor needs DATABASE_URL (PostgreSQL) and REDIS_URL"


def has_services(settings: Settings) -> bool:
    """The floor runs on PostgreSQL and Redis only."""
    return not settings.embedded and bool(settings.redis_url)


def key(row: int) -> str:
    return f"{PREFIX}{row}"


class Floor:
    """The stores the routes reach, opened at startup."""

    def __init__(self, settings: Settings) -> None:
        if not has_services(settings):
            raise ValueError(NEEDS)
        self.pool = PgPool(create_async_engine(settings.effective_database_url))
        self.redis = connect_redis(settings.redis_url)
        self.reads: Coalescer[str, bytes | None] = Coalescer(self._read)
        self.saves: Coalescer[tuple[int, str], None] = Coalescer(self._save)
        self.caches: Coalescer[tuple[str, bytes], None] = Coalescer(self._cache)
        self.turn = itertools.count()

    async def open(self) -> None:
        record = orjson.dumps(RECORD)
        await self.pool.fetch(f"DROP TABLE IF EXISTS {TABLE}")
        await self.pool.fetch(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, record text NOT NULL)")
        await self.pool.fetch(
            f"INSERT INTO {TABLE} SELECT n, $1 FROM generate_series(1, {ROWS}) AS n",
            record.decode(),
        )
        await self._each_key(lambda pipe, name: pipe.set(name, record))

    async def close(self) -> None:
        await self.pool.fetch(f"DROP TABLE IF EXISTS {TABLE}")
        await self._each_key(lambda pipe, name: pipe.delete(name))
        await self.pool.close()
        await self.redis.aclose()

    async def _each_key(self, queue: Callable[[Any, str], Any]) -> None:
        """One command per key, pipelined (keys of any hash slot: a cluster takes it too)."""
        pipe = self.redis.pipeline(transaction=False)
        for row in range(1, ROWS + 1):
            queue(pipe, key(row))
        await pipe.execute()

    def next_row(self) -> int:
        return next(self.turn) % ROWS + 1

    async def _read(self, keys: list[str]) -> Sequence[bytes | None]:
        pipe = self.redis.pipeline(transaction=False)
        for name in keys:
            pipe.get(name)
        found: list[bytes | None] = await pipe.execute()
        return found

    async def _save(self, rows: list[tuple[int, str]]) -> Sequence[None]:
        ordered = sorted(rows)  # id order: concurrent batches never deadlock
        await self.pool.fetch(UPDATE, [row for row, _ in ordered], [text for _, text in ordered])
        return [None] * len(rows)

    async def _cache(self, records: list[tuple[str, bytes]]) -> Sequence[None]:
        pipe = self.redis.pipeline(transaction=False)
        for name, value in records:
            pipe.set(name, value, ex=3600)
        await pipe.execute()
        return [None] * len(records)

    async def answer(self, path: str) -> int:
        row = self.next_row()
        if path == "/http":
            return 200
        if path == "/redis":
            await self.reads.submit(key(row))
            return 200
        if path == "/postgres":
            await self.saves.submit((row, orjson.dumps(RECORD).decode()))
            return 200
        if path == "/save":
            changed = orjson.dumps(RECORD)
            await self.saves.submit((row, changed.decode()))
            await self.caches.submit((key(row), changed))
            return 200
        if path == "/write":
            found = await self.reads.submit(key(row))
            record: dict[str, Any] = orjson.loads(found or b"{}")
            record["visits"] = record.get("visits", 0) + 1
            changed = orjson.dumps(record)
            await self.saves.submit((row, changed.decode()))
            await self.caches.submit((key(row), changed))
            return 200
        return 404


class FloorApp:
    """The ASGI app Granian serves (`statebridge.ops.bench.floor:app`)."""

    def __init__(self) -> None:
        self.floor: Floor | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        assert self.floor is not None
        status = await self.floor.answer(scope["path"])
        body = ANSWER if status == 200 else b""
        headers = HEADERS if status == 200 else [(b"content-length", b"0")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.floor = Floor(Settings())
                    await self.floor.open()
                except Exception as exc:
                    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
                    await send({"type": "lifespan.startup.failed", "message": text})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.floor is not None:
                    await self.floor.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


app = FloorApp()


def granian_command(host: str, port: int) -> list[str]:
    """The command that serves the floor: one Granian worker on uvloop, like `serve`."""
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--loop",
        "uvloop",
        "--workers",
        "1",
        "--host",
        host,
        "--port",
        str(port),
        "--no-ws",
        "statebridge.ops.bench.floor:app",
    ]
