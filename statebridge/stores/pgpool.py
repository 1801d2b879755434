"""The asyncpg pool the PostgreSQL stores share: sessions' and carts' statements run on it.

Plain prepared statements outside an explicit transaction: one round trip per statement,
no BEGIN/COMMIT around it, no per-checkout ping or reset. The pool opens on first use and
keeps its connections under load (no overflow that is opened and closed again); each one it
opens is counted (`statebridge_db_connections_opened_total{pool="asyncpg"}`).

An unreachable or cut-off database is `StoreUnavailable` (the app's 503), raised here, the
one way to the pool; a connection that failed that way is closed, never handed on. Other
database errors (a foreign key, a deadlock) reach the caller as asyncpg raised them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncEngine

from statebridge.observability.metrics import METRICS
from statebridge.stores.unavailable import StoreUnavailable

POOL_SIZE = 10
DEADLOCK_RETRIES = 3  # a statement that waited on another in a cycle runs again, this often

# The database cannot be reached, or dropped the connection, or refuses new work for now
# (shutting down, starting up, too many connections, out of resources): a 503, not a 500.
UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, timed out
    asyncpg.PostgresConnectionError,  # 08xxx
    asyncpg.exceptions.OperatorInterventionError,  # 57xxx: admin or crash shutdown
    asyncpg.exceptions.InsufficientResourcesError,  # 53xxx: too many connections
    asyncpg.InterfaceError,  # the connection or the pool closed under the call
    # a connection the server cut off in the middle of a statement can be left in a state
    # asyncpg cannot use again ("another operation is in progress"): it is closed, below
    asyncpg.exceptions.InternalClientError,
)


async def keep_as_is(_connection: Any) -> None:
    """No reset on release: asyncpg's default costs a round trip per checkout, and the
    statements run here leave nothing behind (no SET, LISTEN, cursors or locks, no open
    transaction)."""


async def counted(_connection: Any) -> None:
    """Every connection the pool opens, counted once."""
    METRICS.connection_opened("asyncpg")


def asyncpg_dsn(engine: AsyncEngine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class PgPool:
    """`await fetch(query, *args)` on a pooled connection of the engine's database."""

    def __init__(self, engine: AsyncEngine, size: int = POOL_SIZE, pooled: bool = False) -> None:
        """`pooled`: the engine's URL is a transaction pooler (PgBouncer), where a prepared
        statement cannot outlive its statement: asyncpg's cache is off, each statement runs
        unnamed (parsed again each time)."""
        self.dsn = asyncpg_dsn(engine)
        self.size = size
        self.pooled = pooled
        self._pool: Any = None
        self._lock = asyncio.Lock()

    async def _open(self) -> Any:
        async with self._lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=1,
                    max_size=self.size,
                    reset=keep_as_is,
                    init=counted,
                    statement_cache_size=0 if self.pooled else 100,
                )
        return self._pool

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        rows: list[Any] = await self._on_connection(
            lambda connection: connection.fetch(query, *args)
        )
        return rows

    async def fetch_retrying(self, query: str, *args: Any) -> list[Any]:
        """`fetch`, run again when PostgreSQL broke a deadlock by failing this statement:
        for statements that are safe to repeat (each alone is a whole transaction)."""
        for attempt in range(DEADLOCK_RETRIES):
            try:
                return await self.fetch(query, *args)
            except asyncpg.DeadlockDetectedError:
                if attempt == DEADLOCK_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    async def _on_connection(self, work: Callable[[Any], Awaitable[Any]]) -> Any:
        try:
            pool = self._pool or await self._open()
            connection = await pool.acquire()
        except UNREACHABLE as exc:
            raise StoreUnavailable(f"database: {type(exc).__name__}: {exc}") from exc
        try:
            return await work(connection)
        except UNREACHABLE as exc:
            # never hand a connection that failed this way to the next caller: the pool
            # opens a new one in its place
            connection.terminate()
            raise StoreUnavailable(f"database: {type(exc).__name__}: {exc}") from exc
        finally:
            await pool.release(connection)

    def usage(self) -> tuple[int, int]:
        """(connections handed out now, the most the pool opens); none before first use."""
        pool = self._pool
        if pool is None:
            return 0, self.size
        return pool.get_size() - pool.get_idle_size(), pool.get_max_size()

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
