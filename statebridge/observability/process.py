"""Process facts: uptime and memory for `/health`, in the shape of Node's `process`, and the
readings of the standard Prometheus process collector for `/metrics`."""

from __future__ import annotations

import contextlib
import gc
import os
import resource
import time
from dataclasses import dataclass

STARTED = time.monotonic()
PAGE = resource.getpagesize()


def uptime() -> float:
    return time.monotonic() - STARTED


def _status_kib() -> dict[str, int]:
    fields: dict[str, int] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                name, _, rest = line.partition(":")
                parts = rest.split()
                if len(parts) == 2 and parts[1] == "kB":
                    fields[name] = int(parts[0]) * 1024
    except OSError:
        pass
    return fields


_cached: tuple[float, dict[str, int]] = (-1.0, {})


def memory() -> dict[str, int]:
    """Node's `process.memoryUsage()` keys, filled from what Linux reports for this process:
    rss = VmRSS, heapTotal = VmData, heapUsed = RssAnon, external = RssFile,
    arrayBuffers = RssShmem. Read at most once a second: /health is polled hard."""
    global _cached
    now = time.monotonic()
    if now - _cached[0] < 1.0:
        return dict(_cached[1])
    figures = _read_memory()
    _cached = (now, figures)
    return dict(figures)


def _read_memory() -> dict[str, int]:
    status = _status_kib()
    rss = status.get("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "rss": rss,
        "heapTotal": status.get("VmData", 0),
        "heapUsed": status.get("RssAnon", 0),
        "external": status.get("RssFile", 0),
        "arrayBuffers": status.get("RssShmem", 0),
    }


def settle_heap() -> int:
    """Park everything built at start-up where the garbage collector no longer walks it.

    A full (generation 2) collection visits every tracked object, and after start-up that is
    some 130,000 of them (FastAPI, SQLAlchemy, pydantic, the drivers). Under load such
    collections came often and stalled every request in flight, which made the whole tail
    of the Redis-backed GETs (docs/perf-history.md, "Garbage collection"). `gc.freeze()` moves
    them to a permanent generation; later garbage is collected as before. Returns how many
    objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def _clock_ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError):
        return 100


def _boot_time() -> float | None:
    """When the machine booted, Unix epoch (`btime` of /proc/stat): the process start times
    in /proc/self/stat count from it."""
    try:
        with open("/proc/stat", "rb") as stat:
            for line in stat:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


TICKS = _clock_ticks()
BOOTED = _boot_time()
STARTED_AT = time.time() - uptime()  # without /proc: this module's import, near enough


@dataclass(frozen=True, slots=True)
class Readings:
    """What the Prometheus process collector reports; None where the system does not say."""

    cpu_seconds: float
    start_time: float
    resident_bytes: int | None = None
    virtual_bytes: int | None = None
    open_fds: int | None = None
    max_fds: int | None = None


def readings() -> Readings:
    """This process, now: one read of /proc/self/stat, one listing of /proc/self/fd, and two
    system calls (times, getrlimit). Each forked worker reads its own process."""
    times = os.times()
    cpu = times.user + times.system
    start = STARTED_AT
    resident = virtual = open_fds = None
    try:
        with open("/proc/self/stat", "rb") as stat:
            # after the command name, which is in parentheses and may hold spaces
            fields = stat.read().rpartition(b")")[2].split()
        # fields[0] is the state (field 3 of proc(5)): vsize is field 23, rss 24, start 22
        virtual = int(fields[20])
        resident = int(fields[21]) * PAGE
        if BOOTED is not None:
            start = BOOTED + int(fields[19]) / TICKS
    except (OSError, IndexError, ValueError):
        pass
    with contextlib.suppress(OSError):
        open_fds = len(os.listdir("/proc/self/fd"))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    max_fds = None if soft == resource.RLIM_INFINITY else soft
    return Readings(cpu, start, resident, virtual, open_fds, max_fds)
