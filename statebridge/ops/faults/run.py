"""Run each fault under load, `repeat` times, and tabulate what the ledger says."""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from statebridge.ops.faults.load import Ledger, add_to_carts, new_sessions, verify
from statebridge.ops.faults.servers import Instance, PrivatePostgres, PrivateRedis

FAULTS = (
    "redis-kill",
    "redis-flush",
    "redis-stall",
    "postgres-restart",
    "instance-kill",
    "instance-term",
)


@dataclass
class Stack:
    postgres: PrivatePostgres
    redis: PrivateRedis
    instances: list[Instance]
    stall_seconds: float

    def inject(self, fault: str) -> None:
        """The fault, from its start to the moment it is repaired (blocking)."""
        victim = self.instances[0]
        if fault == "redis-kill":
            self.redis.kill()
            time.sleep(0.5)
            self.redis.start()
        elif fault == "redis-flush":
            self.redis.flush()
        elif fault == "redis-stall":
            self.redis.pause()
            time.sleep(self.stall_seconds)
            self.redis.pause(resume=True)
        elif fault == "postgres-restart":
            self.postgres.restart("fast")
        elif fault == "instance-kill":
            victim.signal(signal.SIGKILL)
            time.sleep(0.5)
            victim.start()
        elif fault == "instance-term":
            victim.signal(signal.SIGTERM)
            victim.start()
        else:
            raise ValueError(f"unknown fault {fault!r}: one of {', '.join(FAULTS)}")


@dataclass
class Row:
    fault: str
    runs: int = 0
    acked: int = 0
    lost: int = 0
    invented: int = 0
    server_errors: int = 0
    wrong_401: int = 0
    max_recovery_seconds: float = 0.0
    server_error_samples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.invented or self.server_errors or self.wrong_401)


@dataclass
class Report:
    instances: int
    sessions: int
    rows: list[Row] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    def as_dict(self) -> dict[str, object]:
        return {
            "instances": self.instances,
            "sessions": self.sessions,
            "ok": self.ok,
            "faults": [{**asdict(row), "ok": row.ok} for row in self.rows],
        }


async def one_run(stack: Stack, fault: str, sessions: int, before: float, after: float) -> Row:
    urls = [instance.url for instance in stack.instances]
    ids = await new_sessions(urls[-1], sessions)
    ledger = Ledger()
    stop = asyncio.Event()
    load = asyncio.create_task(add_to_carts(urls, ids, ledger, stop))
    await asyncio.sleep(before)
    started = time.monotonic()
    await asyncio.to_thread(stack.inject, fault)
    await asyncio.sleep(after)
    stop.set()
    await load
    verdict = await verify(urls, ids, ledger)
    failed_after = [moment - started for moment in ledger.failures if moment >= started]
    return Row(
        fault=fault,
        runs=1,
        acked=sum(ledger.acked.values()),
        lost=verdict.lost,
        invented=verdict.invented,
        server_errors=ledger.server_errors,
        wrong_401=ledger.wrong_401 + verdict.wrong_401,
        max_recovery_seconds=round(max(failed_after, default=0.0), 2),
        server_error_samples=ledger.samples,
    )


def merge(total: Row, run: Row) -> None:
    total.runs += 1
    total.acked += run.acked
    total.lost += run.lost
    total.invented += run.invented
    total.server_errors += run.server_errors
    total.wrong_401 += run.wrong_401
    total.max_recovery_seconds = max(total.max_recovery_seconds, run.max_recovery_seconds)
    total.server_error_samples = (total.server_error_samples + run.server_error_samples)[:5]


def run(
    faults: list[str],
    repeat: int,
    instances: int,
    sessions: int,
    stall_seconds: float = 10.0,
    before: float = 2.0,
    after: float = 3.0,
    progress: Callable[[str], None] = lambda line: None,
    keep: bool = False,
) -> Report:
    """Start the private stack, run every fault `repeat` times, remove the stack."""
    for fault in faults:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}: one of {', '.join(FAULTS)}")
    root = Path(tempfile.mkdtemp(prefix="statebridge-faults-"))
    root.chmod(0o755)  # PostgreSQL runs as its own user and keeps its socket here
    postgres = PrivatePostgres(root / "pg")
    redis = PrivateRedis(root / "redis")
    started: list[Instance] = []
    report = Report(instances=instances, sessions=sessions)
    try:
        progress(f"starting PostgreSQL and Redis on loopback ports of their own in {root}")
        postgres.init()
        redis.start()
        env = {"DATABASE_URL": postgres.url(), "REDIS_URL": redis.url}
        logs = root / "logs"
        logs.mkdir()
        for index in range(instances):
            instance = Instance(f"faults-{chr(97 + index)}", env, logs, migrate=index == 0)
            started.append(instance.start())
        stack = Stack(postgres, redis, started, stall_seconds)
        for fault in faults:
            total = Row(fault)
            for attempt in range(1, repeat + 1):
                row = asyncio.run(one_run(stack, fault, sessions, before, after))
                merge(total, row)
                progress(
                    f"{fault} run {attempt}/{repeat}: {row.acked} acked, {row.lost} lost, "
                    f"{row.invented} invented, {row.wrong_401} wrong 401"
                )
            report.rows.append(total)
        return report
    finally:
        for instance in started:
            instance.stop()
        redis.pause(resume=True)  # a stalled Redis would not stop
        redis.stop()
        postgres.stop("fast")
        if keep:
            progress(f"kept the private stack's files and the instances' logs in {root}")
        else:
            postgres.destroy()
            shutil.rmtree(root, ignore_errors=True)
