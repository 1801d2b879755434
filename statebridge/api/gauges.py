"""The gauges `/metrics` reads at scrape time, each cheap: no scan of a table or keyspace.

- `statebridge_dependency_up{dependency}`: the database (one row read by its key, which is
  also the last backup's time) and Redis (a PING) answered within STATEBRIDGE_READY_TIMEOUT,
  as `/health/ready` checks them; read in parallel, so a scrape waits at most one timeout.
- `statebridge_last_backup_timestamp_seconds`: `statebridge_meta.last_backup_at` (0 when no
  backup was recorded; absent when the database does not answer).
- `statebridge_db_pool_connections_in_use` / `_max{pool}`: this process's pools, counted in
  memory.
- `statebridge_sessions_live{backend}`: live sessions without a scan per scrape (Redis: its
  live indexes; memory: its own dict; SQL: the count the sweeper took at its last round).
- `statebridge_active_sessions`, `statebridge_info`, `statebridge_gc_frozen_objects`.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable
from typing import TypeVar

from statebridge import __version__
from statebridge.db.backups import last_backup
from statebridge.db.engine import pool_usage
from statebridge.observability.metrics import labels
from statebridge.wiring.services import Services

Gauge = tuple[str, str, str, float]
T = TypeVar("T")

UP_HELP = "1 when the dependency answered this scrape within the ready timeout, else 0"
POOL_IN_USE_HELP = "Database connections this process has handed out now, by pool"
POOL_MAX_HELP = "The most database connections this process's pool opens, by pool"


async def read_backup_time(services: Services) -> float:
    async with services.engine.connect() as conn:
        return await last_backup(conn)


async def ping_redis(services: Services) -> bool:
    assert services.redis is not None
    return bool(await services.redis.ping())


async def within(call: Awaitable[T], timeout: float) -> T | None:
    """The call's result, or None when it failed or took longer than `timeout`."""
    try:
        return await asyncio.wait_for(call, timeout)
    except Exception:  # a scrape must not fail because a store is down
        return None


async def gauges(services: Services) -> list[Gauge]:
    timeout = services.settings.ready_timeout
    redis = services.redis is not None
    active, live, backup_time, pong = await asyncio.gather(
        within(services.sessions.count(), timeout),
        within(services.live_gauge(), timeout),
        within(read_backup_time(services), timeout),
        within(ping_redis(services), timeout) if redis else asyncio.sleep(0, None),
    )
    values: list[Gauge] = []
    if active is not None:
        values.append(("statebridge_active_sessions", "Live sessions (all instances)", "", active))
    if live is not None:
        values.append(
            (
                "statebridge_sessions_live",
                "Live sessions by backend, counted without a scan per scrape (sql: at the last "
                "sweep)",
                labels(backend=services.settings.effective_session_backend),
                live,
            )
        )
    values.append(
        (
            "statebridge_dependency_up",
            UP_HELP,
            labels(dependency="database"),
            float(backup_time is not None),
        )
    )
    if redis:
        values.append(
            ("statebridge_dependency_up", UP_HELP, labels(dependency="redis"), float(bool(pong)))
        )
    if backup_time is not None:
        values.append(
            (
                "statebridge_last_backup_timestamp_seconds",
                "When the last successful `statebridge backup` finished, Unix seconds (0: never)",
                "",
                backup_time,
            )
        )
    pools = {"sqlalchemy": pool_usage(services.engine)}
    if services.pool is not None:
        pools["asyncpg"] = services.pool.usage()
    for name, (in_use, _) in sorted(pools.items()):
        values.append(
            ("statebridge_db_pool_connections_in_use", POOL_IN_USE_HELP, labels(pool=name), in_use)
        )
    for name, (_, most) in sorted(pools.items()):
        values.append(
            ("statebridge_db_pool_connections_max", POOL_MAX_HELP, labels(pool=name), most)
        )
    values.append(
        (
            "statebridge_info",
            "This process: instance id and version",
            # not `instance`: Prometheus gives every target that label itself at scrape time
            labels(instance_id=services.instance_id, version=__version__),
            1,
        )
    )
    values.append(
        (
            "statebridge_gc_frozen_objects",
            "Objects built at start-up and kept out of garbage collection (gc.freeze)",
            "",
            gc.get_freeze_count(),
        )
    )
    return values
