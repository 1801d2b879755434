"""An asyncio HTTP/1.1 load generator: for machines without wrk, and for the flows.

Keep-alive connections, each sending its next request as soon as the last answer is read,
like wrk. It is Python, so it may well be slower than the server it measures: its numbers
are a floor, and `statebridge bench` says which engine produced them.

A flow case (one that consumes sessions, such as the session lifecycle) always runs here:
each client runs the case's steps in order with the session its first step created, which
wrk's script cannot do (it is not told which connection an answer came on).
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar
from urllib.parse import urlsplit

from statebridge.ops.bench.cases import Case, Face, Step, fill
from statebridge.ops.bench.model import Target
from statebridge.ops.http import Answer, Connection, SocketError, encode, tls_context

RequestMaker = Callable[[int], bytes]
T = TypeVar("T")


@dataclass
class Tally:
    latencies_us: list[int] = field(default_factory=list)
    status_errors: int = 0
    socket_errors: int = 0
    flows: int = 0
    bytes_read: int = 0  # of the answers, heads included


class Writer:
    """A case's requests as bytes for one target: each face's base path and Host."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.bases: dict[Face, str] = {}
        self.hosts: dict[Face, str] = {}
        for face in ("stateless", "stateful"):
            parts = urlsplit(target.url_of(face))
            self.bases[face] = parts.path.rstrip("/")
            self.hosts[face] = parts.netloc

    def values(self, user: str, number: int) -> dict[str, str]:
        """The placeholders' values: `user`'s, and the number-th product (round robin)."""
        products = self.target.products
        return {
            "user_id": user,
            "product_id": products[number % len(products)] if products else "",
            "preferences": self.target.preferences.get(user, "{}"),
        }

    def encode(self, step: Step, values: dict[str, str], session: str | None) -> bytes:
        headers = {} if session is None else {"Session-ID": session}
        body = None
        if step.body is not None:
            headers["Content-Type"] = "application/json"
            body = fill(step.body, values).encode()
        path = self.bases[step.face] + fill(step.path, values)
        return encode(step.method, path, self.hosts[step.face], headers, body)


def case_requests(target: Target, case: Case) -> RequestMaker:
    """The n-th request of a case that is not a flow: step n mod steps, and in round n div
    steps the round-th live session (or user) and product."""
    writer = Writer(target)
    steps = case.steps
    count = len(steps)
    fixed = [None if step.varies else writer.encode(step, {}, None) for step in steps]

    def make(n: int) -> bytes:
        index, number = n % count, n // count
        ready = fixed[index]
        if ready is not None:
            return ready
        step = steps[index]
        session = None
        if step.session:
            session, user = target.sessions[number % len(target.sessions)]
        else:
            user = target.users[number % len(target.users)] if target.users else ""
        return writer.encode(step, writer.values(user, number), session)

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
        tally.bytes_read += answer.size
        if answer.status >= 400:
            tally.status_errors += 1
    await link.close()


def session_of(answer: Answer) -> str | None:
    """The id of the session an answer to POST /session created."""
    if found := answer.headers.get("session-id"):
        return found
    try:
        session = answer.json()["data"]["session"]["id"]
    except (ValueError, KeyError, TypeError):
        return None
    return session if isinstance(session, str) else None


async def one_pass(
    writer: Writer,
    case: Case,
    links: dict[Face, Connection],
    number: int,
    deadline: float,
    tally: Tally,
) -> None:
    """The flow's steps in order, as the number-th user; it stops at the first error (the
    state it left is unknown) and at the deadline, and counts itself once complete."""
    users = writer.target.users
    user = users[number % len(users)] if users else ""
    session: str | None = None
    for index, step in enumerate(case.steps):
        if time.monotonic() >= deadline:
            return
        data = writer.encode(step, writer.values(user, number + index), session)
        link = links[step.face]
        try:
            await link.open()
            started = time.perf_counter_ns()
            answer = await link.send(data, keep_body=step.creates_session)
        except SocketError:
            tally.socket_errors += 1
            await asyncio.sleep(0.01)
            return
        tally.latencies_us.append((time.perf_counter_ns() - started) // 1000)
        tally.bytes_read += answer.size
        if not 200 <= answer.status < 300:
            tally.status_errors += 1
            return
        if step.creates_session:
            session = session_of(answer)
            if session is None:
                tally.status_errors += 1
                return
    tally.flows += 1


async def flow_client(
    writer: Writer,
    case: Case,
    counter: itertools.count[int],
    deadline: float,
    timeout: float,
    insecure: bool,
    tally: Tally,
) -> None:
    """One client: a keep-alive connection to each server the flow talks to."""
    links: dict[Face, Connection] = {}
    for step in case.steps:
        url = writer.target.url_of(step.face)
        links.setdefault(step.face, Connection(url, timeout, tls_context(url, insecure)))
    try:
        while time.monotonic() < deadline:
            await one_pass(writer, case, links, next(counter), deadline, tally)
    finally:
        for link in links.values():
            await link.close()


def percentile(ordered: list[int], share: float) -> int:
    if not ordered:
        return 0
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def figures(tally: Tally, elapsed: float) -> dict[str, Any]:
    """A run's numbers, with the keys of wrk's script (microseconds)."""
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
        "bytes": tally.bytes_read,
    }


Client: TypeAlias = "Callable[[itertools.count[int], float, Tally], Awaitable[None]]"


async def drive(client: Client, count: int, seconds: float) -> tuple[Tally, float]:
    """`count` copies of `client` until the deadline, sharing a request counter and a tally;
    the tally and the seconds it took."""
    tally = Tally()
    counter = itertools.count()
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(*(client(counter, deadline, tally) for _ in range(count)))
    return tally, time.monotonic() - started


async def run_async(
    url: str, make: RequestMaker, seconds: float, connections: int, timeout: float, insecure: bool
) -> dict[str, Any]:
    context = tls_context(url, insecure)

    def client(counter: itertools.count[int], deadline: float, tally: Tally) -> Awaitable[None]:
        return connection(url, make, counter, deadline, timeout, context, tally)

    return figures(*await drive(client, connections, seconds))


async def flows_async(
    target: Target, case: Case, seconds: float, clients: int, timeout: float, insecure: bool
) -> dict[str, Any]:
    """One run of a flow case: `clients` clients, each running the flow again and again."""
    writer = Writer(target)

    def client(counter: itertools.count[int], deadline: float, tally: Tally) -> Awaitable[None]:
        return flow_client(writer, case, counter, deadline, timeout, insecure, tally)

    tally, elapsed = await drive(client, clients, seconds)
    return {**figures(tally, elapsed), "flows": tally.flows}


def on_fresh_loop(work: Coroutine[Any, Any, T]) -> T:
    """Run on a fresh event loop (uvloop when installed)."""
    factory: Any = None
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover
        pass
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(work)


def run(
    url: str,
    make: RequestMaker,
    seconds: float,
    connections: int,
    timeout: float = 5.0,
    insecure: bool = False,
) -> dict[str, Any]:
    """One run: `connections` connections sending make(0), make(1), ... between them."""
    return on_fresh_loop(run_async(url, make, seconds, connections, timeout, insecure))
