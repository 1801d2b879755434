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

RequestMaker = Callable[[int], bytes]


@dataclass
class Tally:
    latencies_us: list[int] = field(default_factory=list)
    status_errors: int = 0
    socket_errors: int = 0


def get_request(url: str, path: str) -> RequestMaker:
    parts = urlsplit(url)
    data = f"GET {parts.path.rstrip('/')}{path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode()
    return lambda _n: data


def mix_requests(url: str, sessions: list[str], products: list[str]) -> RequestMaker:
    """The stateful mix, as in wrk's script: odd requests add to a cart, even ones read it."""
    parts = urlsplit(url)
    base = parts.path.rstrip("/")
    host = parts.netloc

    def adding(session: str, product: str) -> bytes:
        body = f'{{"productId":"{product}","quantity":1}}'.encode()
        head = (
            f"POST {base}/cart/add HTTP/1.1\r\nHost: {host}\r\nSession-ID: {session}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    def reading(session: str) -> bytes:
        return f"GET {base}/cart HTTP/1.1\r\nHost: {host}\r\nSession-ID: {session}\r\n\r\n".encode()

    def make(n: int) -> bytes:
        i = n // 2
        session = sessions[i % len(sessions)]
        if n % 2 == 1:
            return adding(session, products[i % len(products)])
        return reading(session)

    return make


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one answer; (status, whether the server keeps the connection open)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    chunked = False
    keep = True
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and value.strip().lower() == b"close":
            keep = False
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                break
            await reader.readexactly(size + 2)
    elif length:
        await reader.readexactly(length)
    return status, keep


async def connection(
    url: str,
    make: RequestMaker,
    counter: itertools.count[int],
    deadline: float,
    timeout: float,
    context: ssl.SSLContext | None,
    tally: Tally,
) -> None:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    while time.monotonic() < deadline:
        try:
            async with asyncio.timeout(timeout):
                if writer is None or reader is None:
                    reader, writer = await asyncio.open_connection(
                        parts.hostname, port, ssl=context
                    )
                started = time.perf_counter_ns()
                writer.write(make(next(counter)))
                status, keep = await read_response(reader)
            tally.latencies_us.append((time.perf_counter_ns() - started) // 1000)
            if status >= 400:
                tally.status_errors += 1
            if not keep:
                writer.close()
                writer = reader = None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            tally.socket_errors += 1
            if writer is not None:
                writer.close()
            writer = reader = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


def percentile(ordered: list[int], share: float) -> int:
    if not ordered:
        return 0
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


async def run_async(
    url: str, make: RequestMaker, seconds: float, connections: int, timeout: float, insecure: bool
) -> dict[str, Any]:
    context = None
    if urlsplit(url).scheme == "https":
        context = ssl.create_default_context()
        if insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
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
