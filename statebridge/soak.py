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
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

PRODUCTS = ("prod001", "prod002", "prod003")
USERS = ("user001", "user002")
RSS_GROWTH_LIMIT = 0.10
SAMPLE_EVERY = 5.0


class SocketError(Exception):
    """The connection failed: refused, reset, closed mid-answer, or timed out."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class Connection:
    """One HTTP/1.1 keep-alive connection; a few microseconds per request, no pooling."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Answer:
        try:
            return await asyncio.wait_for(self._exchange(method, path, body, headers), self.timeout)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            await self.close()
            raise SocketError(f"{type(exc).__name__}: {exc}") from None

    async def _exchange(
        self, method: str, path: str, body: Any, headers: dict[str, str] | None
    ) -> Answer:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        payload = b"" if body is None else orjson.dumps(body)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if body is not None:
            lines.append("Content-Type: application/json")
        if body is not None or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(payload)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionResetError("closed before the answer")
        status = int(status_line.split(b" ", 2)[1])
        answer_headers: dict[str, str] = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            answer_headers[name.strip().lower()] = value.strip()
        if answer_headers.get("transfer-encoding", "").lower() == "chunked":
            content = await self._chunks()
        else:
            content = await self.reader.readexactly(int(answer_headers.get("content-length", 0)))
        if answer_headers.get("connection", "").lower() == "close":
            await self.close()
        return Answer(status, answer_headers, content)

    async def _chunks(self) -> bytes:
        assert self.reader is not None
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readline()).split(b";")[0], 16)
            if size == 0:
                await self.reader.readline()
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readline()

    async def close(self) -> None:
        writer, self.writer, self.reader = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


@dataclass
class SharedSession:
    """One session used by a pair of users, and what the server acknowledged for it."""

    id: str
    quantities: Counter[str] = field(default_factory=Counter)
    uncertain_quantities: Counter[str] = field(default_factory=Counter)
    visits: int = 0
    uncertain_visits: int = 0
    data: dict[str, int] = field(default_factory=dict)
    attempted: dict[str, int] = field(default_factory=dict)


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    unexpected: Counter[str] = field(default_factory=Counter)
    socket_errors: Counter[str] = field(default_factory=Counter)
    requests: int = 0

    def record(self, name: str, seconds: float, status: int) -> None:
        self.requests += 1
        self.statuses[status] += 1
        self.latencies.setdefault(name, []).append(seconds)


class User:
    """A virtual user: one connection, one shared session, the stateful mix in a loop."""

    def __init__(self, index: int, url: str, session: SharedSession, stats: Stats) -> None:
        self.index = index
        self.connection = Connection(url)
        self.session = session
        self.stats = stats
        self.key = f"user{index}"
        self.counter = 0

    async def call(
        self, name: str, method: str, path: str, body: Any = None, session: str | None = None
    ) -> Answer | None:
        headers = {"Session-ID": session or self.session.id}
        started = time.perf_counter()
        try:
            answer = await self.connection.request(method, path, body, headers)
        except SocketError as exc:
            self.stats.socket_errors[str(exc).split(":")[0]] += 1
            return None
        self.stats.record(name, time.perf_counter() - started, answer.status)
        if answer.status != 200:
            self.stats.unexpected[f"{name} {answer.status}"] += 1
            return None
        return answer

    async def add_to_cart(self) -> None:
        product = PRODUCTS[self.counter % len(PRODUCTS)]
        quantity = 1 + self.counter % 3
        body = {"productId": product, "quantity": quantity}
        if await self.call("cart/add", "POST", "/api/stateful/cart/add", body):
            self.session.quantities[product] += quantity
        else:
            self.session.uncertain_quantities[product] += quantity

    async def update_session(self) -> None:
        self.session.attempted[self.key] = self.counter
        body = {"data": {self.key: self.counter}}
        if await self.call("session PUT", "PUT", "/api/stateful/session", body):
            self.session.data[self.key] = self.counter

    async def visit(self) -> None:
        if await self.call("demonstrate", "GET", "/api/stateful/demonstrate/stateful"):
            self.session.visits += 1
        else:
            self.session.uncertain_visits += 1

    async def workflow(self) -> None:
        # called every 10th round: start at 10, 50, 90...; step on in between
        path = "/api/stateful/workflow/" + ("start" if self.counter % 40 == 10 else "next")
        await self.call("workflow", "POST", path, {})

    async def throwaway_session(self) -> None:
        """Create a session, use it once, end it: creation and deletion under load."""
        body = {"userId": USERS[self.index % 2], "data": {"soak": True}}
        answer = await self.call("session POST", "POST", "/api/stateful/session", body)
        if answer is None:
            return
        created = answer.headers.get("session-id", "")
        await self.call("cart GET", "GET", "/api/stateful/cart", session=created)
        await self.call("session DELETE", "DELETE", "/api/stateful/session", session=created)

    async def run(self, stop: asyncio.Event) -> None:
        mix: list[Callable[[], Awaitable[Any]]] = [
            lambda: self.call("session GET", "GET", "/api/stateful/session"),
            self.add_to_cart,
            lambda: self.call("cart GET", "GET", "/api/stateful/cart"),
            self.update_session,
            self.visit,
        ]
        while not stop.is_set():
            self.counter += 1
            for step in mix:
                await step()
            if self.counter % 10 == 0:
                await self.workflow()
            if self.counter % 25 == 0:
                await self.call("info", "GET", "/api/stateful/info")
            if self.counter % 50 == self.index % 50:
                await self.throwaway_session()
        await self.connection.close()


@dataclass
class Instance:
    url: str
    process: subprocess.Popen[bytes] | None = None
    rss: list[tuple[float, int]] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(count: int, migrate: bool, log_dir: Path) -> list[Instance]:
    """Local instances of this statebridge, sharing the configured database and Redis."""
    instances = []
    for index in range(count):
        port = free_port()
        command = [sys.executable, "-m", "statebridge", "serve", "--port", str(port),
                   "--stateless-port", "0", "--stateful-port", "0"]  # fmt: skip
        if migrate and index == 0:
            command.append("--migrate")
        env = {**os.environ, "STATEBRIDGE_INSTANCE_ID": f"soak-{chr(97 + index)}"}
        with open(log_dir / f"instance-{index}.log", "wb") as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        instances.append(Instance(f"http://127.0.0.1:{port}", process))
        wait_ready(instances[-1])
    return instances


def wait_ready(instance: Instance, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if instance.process is not None and instance.process.poll() is not None:
            raise RuntimeError(f"instance {instance.url} exited during start")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{instance.url}/health/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"instance {instance.url} not ready after {timeout:.0f}s")


def stop_all(instances: list[Instance]) -> None:
    for instance in instances:
        if instance.process is not None and instance.process.poll() is None:
            instance.process.send_signal(signal.SIGTERM)
    for instance in instances:
        if instance.process is not None:
            try:
                instance.process.wait(30)
            except subprocess.TimeoutExpired:
                instance.process.kill()


async def sample_rss(instances: list[Instance], stop: asyncio.Event, started: float) -> None:
    connections = [Connection(instance.url) for instance in instances]
    while True:
        for instance, connection in zip(instances, connections, strict=True):
            with contextlib.suppress(SocketError, ValueError, KeyError):
                answer = await connection.request("GET", "/health")
                rss = int(answer.json()["data"]["memory"]["rss"])
                instance.rss.append((time.monotonic() - started, rss))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY)
        if stop.is_set():
            break
    for connection in connections:
        await connection.close()


async def create_sessions(url: str, count: int) -> list[SharedSession]:
    connection = Connection(url)
    sessions = []
    for index in range(count):
        body = {"userId": USERS[index % 2], "data": {"soak": index}}
        answer = await connection.request("POST", "/api/stateful/session", body)
        if answer.status != 200:
            raise RuntimeError(f"cannot create a session: {answer.status} {answer.body[:200]!r}")
        sessions.append(SharedSession(answer.headers["session-id"]))
    await connection.close()
    return sessions


async def verify(instances: list[Instance], sessions: list[SharedSession]) -> list[str]:
    """Compare the ledger with what the instances say now; one line per discrepancy."""
    problems: list[str] = []
    connections = [Connection(instance.url) for instance in instances]
    for index, session in enumerate(sessions):
        headers = {"Session-ID": session.id}
        reader = connections[index % len(connections)]
        cart = await reader.request("GET", "/api/stateful/cart", headers=headers)
        if cart.status != 200:
            problems.append(f"{session.id}: GET /cart answered {cart.status}")
            continue
        found = Counter(
            {item["productId"]: item["quantity"] for item in cart.json()["data"]["cart"]["items"]}
        )
        for product in PRODUCTS:
            low = session.quantities[product]
            high = low + session.uncertain_quantities[product]
            if not low <= found[product] <= high:
                problems.append(
                    f"{session.id}: {product} quantity {found[product]}, acknowledged {low}"
                )
        other = connections[(index + 1) % len(connections)]
        answer = await other.request("GET", "/api/stateful/session", headers=headers)
        if answer.status != 200:
            problems.append(f"{session.id}: GET /session answered {answer.status}")
            continue
        data = answer.json()["data"]["session"]["data"]
        visits = data.get("visitCount", 0)
        if not session.visits <= visits <= session.visits + session.uncertain_visits:
            problems.append(f"{session.id}: visitCount {visits}, acknowledged {session.visits}")
        for key, value in session.data.items():
            if data.get(key) not in (value, session.attempted.get(key)):
                problems.append(
                    f"{session.id}: data[{key}] = {data.get(key)}, acknowledged {value}"
                )
    for connection in connections:
        await connection.close()
    return problems


@dataclass
class Result:
    seconds: float
    connections: int
    instances: list[Instance]
    stats: Stats
    sessions: list[SharedSession]
    problems: list[str]

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.stats.statuses.items() if status >= 500)

    def rss_verdict(self, instance: Instance) -> tuple[str, bool]:
        samples = [rss for _, rss in instance.rss]
        if len(samples) < 4:
            return "too few samples", False
        quarter = max(1, len(samples) // 4)
        warm = statistics.median(samples[quarter : 2 * quarter])
        last = statistics.median(samples[-quarter:])
        growth = (last - warm) / warm
        flat = growth <= RSS_GROWTH_LIMIT
        text = (
            f"start {samples[0] / 2**20:.1f} MiB, after warm-up {warm / 2**20:.1f} MiB, "
            f"end {last / 2**20:.1f} MiB ({growth:+.1%} after warm-up): "
            + ("flat" if flat else "GROWING")
        )
        return text, flat

    @property
    def passed(self) -> bool:
        return (
            self.server_errors == 0
            and not self.stats.socket_errors
            and not self.problems
            and all(self.rss_verdict(instance)[1] for instance in self.instances)
        )

    def report(self) -> str:
        stats = self.stats
        everything = sorted(value for values in stats.latencies.values() for value in values)
        lines = [
            f"statebridge soak: {self.seconds:.0f} s, {self.connections} connections, "
            f"stateful mix, {len(self.instances)} instances ({len(self.sessions)} shared sessions)",
            f"  requests: {stats.requests} ({stats.requests / self.seconds:.0f}/s); "
            f"5xx: {self.server_errors}; other non-200: "
            f"{sum(stats.unexpected.values()) - self.server_errors}; "
            f"socket errors: {sum(stats.socket_errors.values())}",
            f"  latency (ms): {percentiles(everything)}",
        ]
        width = max(len(name) for name in stats.latencies) if stats.latencies else 0
        for name, values in sorted(stats.latencies.items()):
            ordered = sorted(values)
            lines.append(f"    {name:<{width}}  {len(ordered):>8}  {percentiles(ordered)}")
        if stats.unexpected:
            lines.append(f"  unexpected answers: {dict(stats.unexpected)}")
        if stats.socket_errors:
            lines.append(f"  socket errors: {dict(stats.socket_errors)}")
        adds = sum(sum(session.quantities.values()) for session in self.sessions)
        updates = sum(len(session.data) for session in self.sessions)
        visits = sum(session.visits for session in self.sessions)
        lines.append(
            f"  acknowledged writes checked: cart quantity {adds}, visits {visits}, "
            f"session keys {updates}: {len(self.problems)} lost or wrong"
        )
        lines.extend(f"    {problem}" for problem in self.problems[:20])
        for instance in self.instances:
            text, _ = self.rss_verdict(instance)
            lines.append(f"  RSS {instance.url}: {text}")
        lines.append("  verdict: " + ("PASS" if self.passed else "FAIL"))
        return "\n".join(lines)


def percentiles(ordered: list[float]) -> str:
    if not ordered:
        return "no requests"

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000

    return f"p50 {at(0.5):.1f}  p90 {at(0.9):.1f}  p99 {at(0.99):.1f}  max {ordered[-1] * 1000:.1f}"


async def soak(instances: list[Instance], seconds: float, connections: int) -> Result:
    if connections < 2 or connections % 2:
        raise ValueError("connections must be an even number of at least 2 (users come in pairs)")
    sessions = await create_sessions(instances[0].url, connections // 2)
    stats = Stats()
    users = [
        User(index, instances[index % len(instances)].url, sessions[index // 2], stats)
        for index in range(connections)
    ]
    stop = asyncio.Event()
    started = time.monotonic()
    sampler = asyncio.create_task(sample_rss(instances, stop, started))
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
        if not instances:
            spawned = spawn(spawn_count, migrate, log_dir)
            instances = spawned
        loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
        with contextlib.suppress(ImportError):
            import uvloop

            loop_factory = uvloop.new_event_loop
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(soak(instances, seconds, connections))
    finally:
        stop_all(spawned)
