"""The embedded SQLite file, used in the event loop's own thread: reads without a thread
hop, and group commit for writes.

aiosqlite runs every call on a thread of its own and hands the answer back to the event
loop; a pooled SELECT is some eight such hops (checkout, BEGIN, execute, fetch, close,
ROLLBACK), 0.8 ms on an idle machine and more under load, for a lookup SQLite answers in
microseconds. And writers on separate connections that meet SQLite's one write lock wait
in its busy handler, which sleeps in steps of up to 100 ms. So the statements on every
request's path run here instead, through SQLAlchemy's synchronous engine on one plain
`sqlite3` connection of the process, in the calling (event loop) thread:

- `read(fn)`: `fn(conn)` at once. WAL readers never wait for the writer, so a read blocks
  the loop for microseconds. `select(statement, params)` (and `select_first`) does the same
  for one SELECT on the hot path, run on the `sqlite3` connection itself
  (statebridge/db/rawselect.py).
- `await write(fn)`: the writes that arrive together run in one `BEGIN IMMEDIATE`
  transaction, and each caller is answered once that transaction has committed. Should one
  fail (a foreign key, say), the batch is rolled back and each write runs again alone, so the
  failure reaches its caller alone. One such transaction at a time: this process never
  waits on itself. When another process holds the write lock (`--workers`), the batch runs
  on a worker thread that waits for it, so the loop never does.
- `write_later(fn)`: the same, without waiting (the sliding expiry of a read).

Nothing here is hand-written SQL: the stores pass SQLAlchemy statements.

Durability is SQLite's in WAL mode with `synchronous=NORMAL`: a committed write survives a
crash of the application (it is in the WAL file before the commit returns); after a power
loss the last commits before the next checkpoint may be lost, the database stays consistent.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import StaticPool

from statebridge.batching import Coalescer
from statebridge.db.engine import IMMEDIATE, SINGLE_READ, configure_sqlite, json_dumps, sqlite_path
from statebridge.db.rawselect import RawSelect

T = TypeVar("T")
Work = Callable[[Connection], Any]
Query = sa.Select[Any] | sa.UpdateBase
LIMIT = 256  # writes per transaction at most


class Busy(Exception):
    """SQLite could not start at once (another process holds the lock, or the WAL index is
    being rebuilt)."""


def sync_engine(path: str, busy_ms: int, static: bool) -> Engine:
    engine = sa.create_engine(
        f"sqlite:///{path}",
        json_serializer=json_dumps,
        json_deserializer=orjson.loads,
        # sqlite3's own busy wait (5 s by default) applies before the PRAGMAs set ours
        connect_args={"check_same_thread": False, "timeout": busy_ms / 1000},
        **({"poolclass": StaticPool} if static else {"pool_size": 2, "max_overflow": 0}),
    )
    configure_sqlite(engine, busy_ms=busy_ms)
    return engine


_pid = os.getpid()  # this process's, kept by the fork hook: os.getpid() is a system call


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


class LocalSqlite:
    def __init__(self, path: str) -> None:
        self.path = path
        self._pid = 0
        self._engine: Engine | None = None
        self._waiting: Engine | None = None  # for batches that must wait for another process
        self._batches: Coalescer[Work, Any] = Coalescer(self._run, limit=LIMIT, concurrency=1)
        self._raw: sqlite3.Connection | None = None
        self._compiled: dict[Query, RawSelect] = {}

    @property
    def engine(self) -> Engine:
        """One connection per process (a forked worker opens its own), never waiting."""
        if self._engine is None or self._pid != _pid:
            self._engine = sync_engine(self.path, busy_ms=0, static=True)
            self._waiting = None
            self._raw = None
            self._pid = _pid
        return self._engine

    @property
    def raw(self) -> sqlite3.Connection:
        """The `sqlite3` connection under `engine` (its one pooled connection, configured by
        its connect hook)."""
        raw = self._raw
        if raw is not None and self._pid == _pid:
            return raw
        engine = self.engine
        if self._raw is None:
            pooled = engine.raw_connection()
            self._raw = pooled.driver_connection
            pooled.close()  # back to the static pool: the same connection stays open
        assert self._raw is not None
        return self._raw

    def _compiled_for(self, statement: Query) -> RawSelect:
        """Statements are module constants: compiled once each, kept by the statement itself
        (statements hash and compare by identity)."""
        compiled = self._compiled.get(statement)
        if compiled is None:
            compiled = self._compiled[statement] = RawSelect(statement, self.engine.dialect)
        return compiled

    async def select(self, statement: sa.Select[Any], params: dict[str, Any]) -> list[Any]:
        """The rows of one SELECT, at once, as `read` gives them."""
        rows: list[Any] = await self._select(statement, params, first=False)
        return rows

    async def select_first(self, statement: sa.Select[Any], params: dict[str, Any]) -> Any:
        """The first row of one SELECT, or None."""
        return await self._select(statement, params, first=True)

    def rows_in(self, conn: Connection, statement: Query, params: dict[str, Any]) -> list[Any]:
        """Inside a write (`conn` is the one `write` hands its work): the rows of one
        statement, run on that connection's `sqlite3` connection."""
        return self._compiled_for(statement).rows(driver(conn), params)

    def first_in(self, conn: Connection, statement: Query, params: dict[str, Any]) -> Any:
        """Inside a write: the first row of one statement, or None."""
        return self._compiled_for(statement).first(driver(conn), params)

    def each_in(self, conn: Connection, statement: Query, params: list[dict[str, Any]]) -> None:
        """Inside a write: one statement without RETURNING, once per set of parameters."""
        self._compiled_for(statement).each(driver(conn), params)

    async def _select(self, statement: sa.Select[Any], params: dict[str, Any], first: bool) -> Any:
        compiled = self._compiled_for(statement)
        try:
            with raw_busy_as_busy():
                return (compiled.first if first else compiled.rows)(self.raw, params)
        except Busy:  # SQLite could not start at once: wait on a worker thread
            rows = await asyncio.to_thread(
                run_read, self.waiting, lambda conn: list(conn.execute(statement, params))
            )
        return (rows[0] if rows else None) if first else rows

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """`fn(conn)` at once; `fn` runs one SELECT (in SQLite's own implicit transaction:
        two statements would not see one snapshot). Should SQLite be unable to start it at
        once, it runs on a worker thread that waits."""
        try:
            return run_read(self.engine, fn)
        except Busy:
            return await asyncio.to_thread(run_read, self.waiting, fn)

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """`fn(conn)` in the next shared transaction; its result once committed."""
        result: T = await self._batches.submit(fn)
        return result

    def write_later(self, fn: Work) -> None:
        """Queue `fn` for the next shared transaction; its outcome is nobody's concern."""
        self._batches.enqueue(fn).add_done_callback(_ignore_outcome)

    @property
    def waiting(self) -> Engine:
        """For work that must wait for another process's lock, on a worker thread."""
        if self._waiting is None:
            self._waiting = sync_engine(self.path, busy_ms=10000, static=False)
        return self._waiting

    async def _run(self, batch: list[Work]) -> list[Any]:
        try:
            return run_batch(self.engine, batch)
        except Busy:
            pass
        return await asyncio.to_thread(run_batch, self.waiting, batch)

    def close(self) -> None:
        for engine in (self._engine, self._waiting):
            if engine is not None:
                engine.dispose()
        self._engine = self._waiting = None
        self._raw = None


def run_batch(engine: Engine, batch: list[Work]) -> list[Any]:
    """The batch in one IMMEDIATE transaction; Busy if the write lock is not free at once
    (only on the engine that does not wait). Should one write fail, the transaction is
    rolled back and each write runs again in a transaction of its own, so that the failure
    reaches its caller alone (savepoints around every write would cost two statements each
    on the common path, where nothing fails)."""
    try:
        with begin_immediate_sync(engine) as conn:
            return [work(conn) for work in batch]
    except Busy:
        raise
    except Exception:
        if len(batch) == 1:
            raise
    results: list[Any] = []
    for work in batch:
        try:
            with begin_immediate_sync(engine) as conn:
                results.append(work(conn))
        except Busy:
            raise
        except Exception as exc:  # that write alone failed, and its caller is told
            results.append(exc)
    return results


def run_read(engine: Engine, fn: Callable[[Connection], T]) -> T:
    with busy_as_busy(), engine.connect() as plain:
        return fn(plain.execution_options(**{SINGLE_READ: True}))


@contextmanager
def busy_as_busy() -> Iterator[None]:
    """SQLite's "database is locked" (or busy) raised as `Busy`."""
    try:
        yield
    except OperationalError as exc:
        if _is_busy(exc):
            raise Busy(str(exc)) from exc
        raise


@contextmanager
def begin_immediate_sync(engine: Engine) -> Iterator[Connection]:
    with busy_as_busy():
        plain = engine.connect()
        try:
            conn = plain.execution_options(**{IMMEDIATE: True})
            transaction = conn.begin()
        except BaseException:
            plain.close()
            raise
    with plain, transaction:
        yield conn


def driver(conn: Connection) -> sqlite3.Connection:
    """The `sqlite3` connection under a SQLAlchemy one."""
    raw = conn.connection.driver_connection
    if not isinstance(raw, sqlite3.Connection):
        raise TypeError("not a sqlite3 connection")
    return raw


@contextmanager
def raw_busy_as_busy() -> Iterator[None]:
    """The same for `sqlite3`'s own exception (a statement on the raw connection), and for
    SQLAlchemy's (opening that connection)."""
    try:
        with busy_as_busy():
            yield
    except sqlite3.OperationalError as exc:
        if _busy_text(exc):
            raise Busy(str(exc)) from exc
        raise


def _is_busy(exc: OperationalError) -> bool:
    orig = exc.orig
    return isinstance(orig, sqlite3.OperationalError) and _busy_text(orig)


def _busy_text(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _ignore_outcome(future: Any) -> None:
    if not future.cancelled():
        future.exception()


_locals: weakref.WeakKeyDictionary[AsyncEngine, LocalSqlite] = weakref.WeakKeyDictionary()


def local_sqlite(engine: AsyncEngine) -> LocalSqlite:
    """The SQLite file of `engine`, used in the loop's thread (every store shares it)."""
    local = _locals.get(engine)
    if local is None:
        path = sqlite_path(engine.url.render_as_string(hide_password=False))
        if path is None:
            raise ValueError("the embedded stores need a SQLite file, not an in-memory database")
        local = _locals[engine] = LocalSqlite(str(path))
    return local


def close_local(engine: AsyncEngine) -> None:
    """Close the process's own connections to `engine`'s file, if it opened any."""
    local = _locals.pop(engine, None)
    if local is not None:
        local.close()
