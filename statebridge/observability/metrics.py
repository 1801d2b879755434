"""Prometheus metrics from plain counters, rendered in the text exposition format.

Hand-rolled instead of prometheus_client: that library guards every increment with a lock
(it is written for threads), while a statebridge worker is one event loop, where a dict
update is already atomic. The text format is small (version 0.0.4), and what we expose is
a handful of families, plus the ones prometheus_client's default collectors (process, gc,
platform) write, under their names, types and help texts, so that dashboards made for
those find them here.

Label values are bounded: routes are templates (`/users/{user_id}`, never the raw path),
methods and statuses are few, caches and stores are named in code.
"""

from __future__ import annotations

import gc
import math
import mmap
import platform
import struct
from bisect import bisect_left
from collections.abc import Iterable

from statebridge.observability import process

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# seconds; covers a cached read (sub-millisecond) to a request stuck behind a dead database.
# 0.1 is a boundary because the latency SLO counts the stateful requests answered within
# 100 ms (deploy/monitoring/rules): change both together.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def labels(**pairs: str) -> str:
    return "{" + ",".join(f'{name}="{escape(value)}"' for name, value in pairs.items()) + "}"


def number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if isinstance(value, int) or value.is_integer():
        return str(int(value))
    return repr(value)


class Histogram:
    """Bucket counts (not yet cumulative), a sum and a count."""

    __slots__ = ("count", "counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds
        self.count += 1


class SharedCount:
    """A count that one process writes and the processes it forks afterwards read: eight
    bytes of an anonymous shared mapping, made before the fork. The server counts its
    worker restarts here, and every worker's /metrics shows the same number."""

    __slots__ = ("_shared",)
    LAYOUT = "=Q"

    def __init__(self) -> None:
        self._shared = mmap.mmap(-1, struct.calcsize(self.LAYOUT))  # MAP_SHARED | MAP_ANONYMOUS

    @property
    def value(self) -> int:
        return int(struct.unpack_from(self.LAYOUT, self._shared)[0])

    def add(self, amount: int = 1) -> None:
        """Only the one writing process calls this (the server, for its workers)."""
        struct.pack_into(self.LAYOUT, self._shared, 0, self.value + amount)


class Metrics:
    """The counters of one process. Observing is a few dict operations, nothing more."""

    def __init__(self) -> None:
        self.worker_restarts = SharedCount()
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency: dict[tuple[str, str], Histogram] = {}
        self.in_flight = 0
        self.store_errors: dict[str, int] = {}
        self.cache: dict[tuple[str, str], int] = {}
        self.connections: dict[str, int] = {}
        self.session_fallbacks: dict[str, int] = {}
        self.read_fallbacks = 0
        self.session_events: dict[str, int] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        if method not in HTTP_METHODS:
            method = "OTHER"
        key = (route, method, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        histogram = self.latency.get((route, method))
        if histogram is None:
            histogram = self.latency[(route, method)] = Histogram()
        histogram.observe(seconds)

    def store_error(self, store: str) -> None:
        """A session/database store failed: Redis fell back, or a request got 503."""
        self.store_errors[store] = self.store_errors.get(store, 0) + 1

    def cache_lookup(self, cache: str, hit: bool) -> None:
        key = (cache, "hit" if hit else "miss")
        self.cache[key] = self.cache.get(key, 0) + 1

    def session_fallback(self, reason: str) -> None:
        """A session read PostgreSQL served because Redis could not: `unavailable` (Redis
        unreachable) or `missed` (Redis did not hold a live session: flushed, emptied)."""
        self.session_fallbacks[reason] = self.session_fallbacks.get(reason, 0) + 1

    def connection_opened(self, pool: str) -> None:
        """A database connection opened (flat under steady load; a climb means churn)."""
        self.connections[pool] = self.connections.get(pool, 0) + 1

    def read_fallback(self) -> None:
        """A read meant for the replica (DATABASE_READ_URL) answered by the primary."""
        self.read_fallbacks += 1

    def session_event(self, event: str, count: int = 1) -> None:
        """Sessions created, expired, revoked or regenerated (observability/sessions.py)."""
        self.session_events[event] = self.session_events.get(event, 0) + count

    def render(
        self, gauges: Iterable[tuple[str, str, str, float]] = (), *, runtime: bool = True
    ) -> str:
        """The exposition text; `gauges` are (name, help, labels, value) read at scrape time,
        and `runtime` adds the process and Python families, read now."""
        out: list[str] = []
        family(out, "statebridge_http_requests_total", "counter", "HTTP requests answered")
        for (route, method, status), value in sorted(self.requests.items()):
            out.append(
                f"statebridge_http_requests_total"
                f"{labels(route=route, method=method, status=str(status))} {value}"
            )
        family(
            out,
            "statebridge_http_request_duration_seconds",
            "histogram",
            "Time from the request's arrival to the end of its response",
        )
        for (route, method), histogram in sorted(self.latency.items()):
            name = "statebridge_http_request_duration_seconds"
            cumulative = 0
            for bound, count in zip((*BUCKETS, math.inf), histogram.counts, strict=True):
                cumulative += count
                bucket = labels(route=route, method=method, le=number(bound))
                out.append(f"{name}_bucket{bucket} {cumulative}")
            pair = labels(route=route, method=method)
            out.append(f"{name}_sum{pair} {number(histogram.total)}")
            out.append(f"{name}_count{pair} {histogram.count}")
        family(out, "statebridge_http_requests_in_flight", "gauge", "Requests being answered")
        out.append(f"statebridge_http_requests_in_flight {self.in_flight}")
        family(
            out,
            "statebridge_store_errors_total",
            "counter",
            "Failed calls to a backing store (redis: served from PostgreSQL instead; "
            "database: answered 503)",
        )
        for store in sorted({"redis", "database", *self.store_errors}):
            out.append(
                f"statebridge_store_errors_total{labels(store=store)} "
                f"{self.store_errors.get(store, 0)}"
            )
        family(
            out,
            "statebridge_session_fallback_reads_total",
            "counter",
            "Session reads served from PostgreSQL because Redis was unreachable (unavailable) "
            "or did not hold the live session (missed)",
        )
        for reason in sorted({"unavailable", "missed", *self.session_fallbacks}):
            out.append(
                f"statebridge_session_fallback_reads_total{labels(reason=reason)} "
                f"{self.session_fallbacks.get(reason, 0)}"
            )
        family(out, "statebridge_cache_requests_total", "counter", "Cache lookups by result")
        for (cache, result), value in sorted(self.cache.items()):
            out.append(
                f"statebridge_cache_requests_total{labels(cache=cache, result=result)} {value}"
            )
        family(
            out,
            "statebridge_db_connections_opened_total",
            "counter",
            "Database connections this process opened, by pool",
        )
        for pool in sorted({"asyncpg", "sqlalchemy", *self.connections}):
            out.append(
                f"statebridge_db_connections_opened_total{labels(pool=pool)} "
                f"{self.connections.get(pool, 0)}"
            )
        family(
            out,
            "statebridge_worker_restarts_total",
            "counter",
            "Workers the server started again after one died (the server's count: the same "
            "from every worker)",
        )
        out.append(f"statebridge_worker_restarts_total {self.worker_restarts.value}")
        family(
            out,
            "statebridge_db_read_fallbacks_total",
            "counter",
            "Catalog reads meant for the replica (DATABASE_READ_URL) that the primary answered "
            "because the replica was down",
        )
        out.append(f"statebridge_db_read_fallbacks_total {self.read_fallbacks}")
        family(
            out,
            "statebridge_sessions_total",
            "counter",
            "Session lifecycle events of this process: created, expired (swept here), "
            "revoked, regenerated",
        )
        for event in ("created", "expired", "revoked", "regenerated"):
            count = self.session_events.get(event, 0)
            out.append(f"statebridge_sessions_total{labels(event=event)} {count}")
        last = ""
        for name, help_text, label_text, reading in gauges:
            if name != last:
                family(out, name, "gauge", help_text)
                last = name
            out.append(f"{name}{label_text} {number(reading)}")
        if runtime:
            render_process(out, process.readings())
            render_python(out)
        return "\n".join(out) + "\n"


def family(out: list[str], name: str, kind: str, help_text: str) -> None:
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} {kind}")


def single(out: list[str], name: str, kind: str, help_text: str, value: float | None) -> None:
    """A family of one unlabelled sample; nothing at all when the value is unknown."""
    if value is not None:
        family(out, name, kind, help_text)
        out.append(f"{name} {number(value)}")


def render_process(out: list[str], facts: process.Readings) -> None:
    """prometheus_client's ProcessCollector: this process (each worker its own)."""
    single(
        out,
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
        facts.virtual_bytes,
    )
    single(
        out,
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        facts.resident_bytes,
    )
    single(
        out,
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
        facts.start_time,
    )
    single(
        out,
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        facts.cpu_seconds,
    )
    single(out, "process_open_fds", "gauge", "Number of open file descriptors.", facts.open_fds)
    single(
        out, "process_max_fds", "gauge", "Maximum number of open file descriptors.", facts.max_fds
    )


GC_FAMILIES = (
    ("python_gc_objects_collected_total", "collected", "Objects collected during gc"),
    (
        "python_gc_objects_uncollectable_total",
        "uncollectable",
        "Uncollectable object found during GC",
    ),
    ("python_gc_collections_total", "collections", "Number of times this generation was collected"),
)
GC_STATS = platform.python_implementation() == "CPython" and hasattr(gc, "get_stats")
PYTHON_INFO = "python_info" + labels(
    implementation=platform.python_implementation(),
    major=platform.python_version_tuple()[0],
    minor=platform.python_version_tuple()[1],
    patchlevel=platform.python_version_tuple()[2],
    version=platform.python_version(),
)


def render_python(out: list[str]) -> None:
    """prometheus_client's GCCollector (`gc.get_stats()`, three small dicts) and
    PlatformCollector (made once: it never changes)."""
    if GC_STATS:
        stats = gc.get_stats()
        for name, key, help_text in GC_FAMILIES:
            family(out, name, "counter", help_text)
            for generation, stat in enumerate(stats):
                out.append(f'{name}{{generation="{generation}"}} {stat[key]}')
    family(out, "python_info", "gauge", "Python platform information")
    out.append(f"{PYTHON_INFO} 1")


METRICS = Metrics()
"""This process's metrics (forked workers each start from an empty copy; the worker
restarts alone are shared with the server that forked them)."""
