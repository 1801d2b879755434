"""Where the CPU went during a run, read from /proc (Linux; None elsewhere).

Two readings bracket each run:
- the CPU time of the processes given with --pid, each with every process below it (a
  statebridge started with several workers forks them; nginx's master does its work in
  worker processes), so one PID stands for the whole server;
- how busy the machine was: the share of all CPUs' time not spent idle. On a small machine
  the load generator, a proxy and the server share the same cores, and a run that leaves
  none idle measures the machine as much as the server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


def children(pid: int) -> list[int]:
    """Direct child processes of `pid` (from every one of its threads)."""
    found: list[int] = []
    try:
        tasks = list((PROC / str(pid) / "task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found.extend(int(part) for part in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return found


def tree(pid: int) -> list[int]:
    """`pid` and every process below it."""
    seen: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.append(current)
        pending.extend(children(current))
    return seen


def _ticks(pid: int) -> int | None:
    """User + system CPU ticks of one process (all its threads), or None if it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the command name may hold spaces and parentheses
    return int(fields[11]) + int(fields[12])


@dataclass(frozen=True)
class Reading:
    """CPU seconds so far of the given PIDs' process trees, all read in one pass: `total`
    counts a process once however many of the given trees hold it; `by_root` gives each
    given PID's own tree. None/absent for what could not be read."""

    total: float | None
    by_root: dict[int, float]


def read(pids: tuple[int, ...]) -> Reading:
    hertz = os.sysconf("SC_CLK_TCK")
    ticks: dict[int, int | None] = {}
    by_root: dict[int, float] = {}
    for root in dict.fromkeys(pids):
        members = tree(root)
        for pid in members:
            if pid not in ticks:
                ticks[pid] = _ticks(pid)
        mine = [t for pid in members if (t := ticks[pid]) is not None]
        if mine:
            by_root[root] = sum(mine) / hertz
    known = [t for t in ticks.values() if t is not None]
    return Reading(total=sum(known) / hertz if known else None, by_root=by_root)


def spent(before: Reading, after: Reading) -> tuple[float | None, dict[int, float]]:
    """CPU seconds between two readings: in all, and per given PID (those read both times)."""
    total = None
    if before.total is not None and after.total is not None:
        total = after.total - before.total
    per_root = {
        pid: round(after.by_root[pid] - seconds, 3)
        for pid, seconds in before.by_root.items()
        if pid in after.by_root
    }
    return total, per_root


@dataclass(frozen=True)
class MachineTimes:
    busy: int
    total: int


def machine_times() -> MachineTimes | None:
    """All CPUs' time since boot, in ticks: total and not idle (idle and iowait excluded)."""
    try:
        first = (PROC / "stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not first or first[0] != "cpu":
        return None
    values = [int(value) for value in first[1:9]]  # user .. steal; guest is inside user
    idle = values[3] + values[4]
    total = sum(values)
    return MachineTimes(busy=total - idle, total=total)


def busy_percent(before: MachineTimes | None, after: MachineTimes | None) -> float | None:
    """How busy all CPUs were between two readings, 0-100."""
    if before is None or after is None or after.total <= before.total:
        return None
    return 100.0 * (after.busy - before.busy) / (after.total - before.total)
