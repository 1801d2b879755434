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


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # the command name may hold spaces and parentheses


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


def process_seconds(pids: tuple[int, ...]) -> float | None:
    """User + system CPU time of the given processes and their descendants, in seconds.

    None when nothing was given or none of them can be read."""
    if not pids:
        return None
    ticks = 0
    readable = False
    for pid in dict.fromkeys(p for root in pids for p in tree(root)):
        fields = _stat_fields(pid)
        if fields is None:
            continue
        readable = True
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (all threads)
    return ticks / os.sysconf("SC_CLK_TCK") if readable else None


def by_root(pids: tuple[int, ...]) -> dict[int, float]:
    """Each given PID's own reading (its process tree), for the readable ones."""
    found = {pid: process_seconds((pid,)) for pid in dict.fromkeys(pids)}
    return {pid: seconds for pid, seconds in found.items() if seconds is not None}


def spent(before: dict[int, float], after: dict[int, float]) -> dict[int, float]:
    """CPU seconds per PID between two `by_root` readings (PIDs read both times)."""
    return {pid: round(after[pid] - before[pid], 3) for pid in before if pid in after}


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
