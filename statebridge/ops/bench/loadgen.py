"""An asyncio HTTP/1.1 load generator, for machines without wrk.

Keep-alive connections, each sending its next request as soon as the last answer is read,
like wrk. It is Python, so it may well be slower than the server it measures: its numbers
are a floor, and `statebridge bench` says which engine produced them.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from statebridge.ops.http import Connection, SocketError, encode, tls_context

RequestMaker = Callable[[int], bytes]


@dataclass
class Tally:
    latencies_us: list[int] = field(default_factory=list)
    status_errors: int = 0
    socket_errors: int = 0


def get_request(url: str, path: str) -> RequestMaker:
    parts = urlsplit(url)
    data = encode("GET", f"{parts.path.rstrip('/')}{path}", parts.netloc)
    return lambda _n: data


def mix_requests(url: str, sessions: list[str], products: list[str]) -> RequestMaker:
    """The stateful mix, as in wrk's script: odd requests add to a cart, even ones read it."""
    parts = urlsplit(url)
    base = parts.path.rstrip("/")
    host = parts.netloc

    def adding(session: str, product: str) -> bytes:
        body = f'{{"productId":"{product}","quantity":1}}'.encode()
        headers = {"Session-ID": session, "Content-Type": "application/json"}
        return encode("POST", f"{base}/cart/add", host, headers, body)

    def reading(session: str) -> bytes:
        return encode("GET", f"{base}/cart", host, {"Session-ID": session})

    def make(n: int) -> bytes:
        i = n // 2
        session = sessions[i % len(sessions)]
        if n % 2 == 1:
            return adding(session, products[i % len(products)])
        return reading(session)

    return make


async def connection(
    url: str,
    make: RequestMaker,
    counter: itertools.count[int],
    deadline: float,
    timeout: float,
    context: ssl.SSLContext | None,
    tally: Tally,
) -> None:
    """One keep-alive connection sending requests back to back until the deadline; the
    latency of a request excludes the connect before it."""
    link = Connection(url, timeout, context)
    while time.monotonic() < deadline:
        try:
            await link.open()
            started = time.perf_counter_ns()
            answer = await link.send(make(next(counter)), keep_body=False)
        except SocketError:
            tally.socket_errors += 1
            await asyncio.sleep(0.01)
            continue
        tally.latencies_us.append((time.perf_counter_ns() - started) // 1000)
        if answer.status >= 400:
            tally.status_errors += 1
    await link.close()


def percentile(ordered: list[int], share: float) -> int:
    if not ordered:
        return 0
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


async def run_async(
    url: str, make: RequestMaker, seconds: float, connections: int, timeout: float, insecure: bool
) -> dict[str, Any]:
    context = tls_context(url, insecure)
    tally = Tally()
    counter = itertools.count(1)
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(
        *(
            connection(url, make, counter, deadline, timeout, context, tally)
            for _ in range(connections)
        )
    )
    elapsed = time.monotonic() - started
    ordered = sorted(tally.latencies_us)
    return {
        "requests": len(ordered),
        "duration_us": int(elapsed * 1_000_000),
        "status": tally.status_errors,
        "socket": tally.socket_errors,
        "p50": percentile(ordered, 0.50),
        "p90": percentile(ordered, 0.90),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1] if ordered else 0,
    }


def run(
    url: str,
    make: RequestMaker,
    seconds: float,
    connections: int,
    timeout: float = 5.0,
    insecure: bool = False,
) -> dict[str, Any]:
    """One run on a fresh event loop (uvloop when installed)."""
    factory: Any = None
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover
        pass
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(run_async(url, make, seconds, connections, timeout, insecure))
