"""Virtual users, the sessions they share, and what they count."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from statebridge.ops.http import Answer, Connection, SocketError

PRODUCTS = ("prod001", "prod002", "prod003")
USERS = ("user001", "user002")


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
