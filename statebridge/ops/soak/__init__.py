"""`statebridge soak`: sustained stateful load against several instances, then a report.

Virtual users work in pairs; the two users of a pair share one session and talk to
different instances over their own keep-alive connection, so every session is read and
written through every instance at once. Each user runs the stateful mix (read the session,
add to the cart, read the cart, update the session, count a visit, now and then a workflow
step, the server info, or a throwaway session made and ended) until the time is up.

Every write the server acknowledges goes into a ledger; at the end the ledger is checked
against what the instances return (cart quantities, visit counts, session data), so a lost
write shows up as a failure, not as a slightly lower number. Resident memory of each
instance is sampled from /health during the run.

The verdict passes with no 5xx, no socket errors, no lost write and flat RSS (the last
quarter of the run within 10% of the second quarter, after warm-up). It is a program,
not a test: it prints what it measured and exits 0 or 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from statebridge.ops.soak.instances import (
    SAMPLE_EVERY,
    Instance,
    sample_rss,
    spawn,
    stop_all,
    wait_ready,
)
from statebridge.ops.soak.ledger import create_sessions, verify
from statebridge.ops.soak.report import Result
from statebridge.ops.soak.users import Stats, User

__all__ = ["Result", "run"]


async def soak(instances: list[Instance], seconds: float, connections: int) -> Result:
    sessions = await create_sessions(instances[0].url, connections // 2)
    stats = Stats()
    users = [
        User(index, instances[index % len(instances)].url, sessions[index // 2], stats)
        for index in range(connections)
    ]
    stop = asyncio.Event()
    started = time.monotonic()
    every = max(0.5, min(SAMPLE_EVERY, seconds / 12))
    sampler = asyncio.create_task(sample_rss(instances, stop, started, every))
    tasks = [asyncio.create_task(user.run(stop)) for user in users]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - started
    await sampler
    problems = await verify(instances, sessions)
    return Result(elapsed, connections, instances, stats, sessions, problems)


def run(
    seconds: float,
    connections: int,
    targets: list[str],
    spawn_count: int,
    migrate: bool,
) -> Result:
    """Soak the given instances, or `spawn_count` local ones started for the run."""
    log_dir = Path(tempfile.mkdtemp(prefix="statebridge-soak-"))
    instances = [Instance(url.rstrip("/")) for url in targets]
    spawned: list[Instance] = []
    try:
        if connections < 2 or connections % 2:
            raise ValueError("connections must be an even number of at least 2 (users in pairs)")
        if not instances:
            spawned = spawn(spawn_count, migrate, log_dir)
            instances = spawned
        for instance in instances:
            wait_ready(instance, timeout=10.0)
        loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
        with contextlib.suppress(ImportError):
            import uvloop

            loop_factory = uvloop.new_event_loop
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(soak(instances, seconds, connections))
    finally:
        stop_all(spawned)
