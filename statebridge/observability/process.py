"""Process facts for `/health`: uptime and memory, in the shape of Node's `process`."""

from __future__ import annotations

import gc
import resource
import time

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
