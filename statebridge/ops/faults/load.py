"""Cart adds from many sessions through every instance in turn, and the ledger they keep."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx


@dataclass
class Ledger:
    """Per session: adds acknowledged (200) and unanswered (an error, a refused connection
    or an enveloped 503); 401s for sessions that were live; other 5xx; when requests failed."""

    acked: Counter[str] = field(default_factory=Counter)
    unanswered: Counter[str] = field(default_factory=Counter)
    wrong_401: int = 0
    server_errors: int = 0
    failures: list[float] = field(default_factory=list)  # monotonic times of failed requests
    samples: list[str] = field(default_factory=list)  # the first 5xx answers, as seen


async def new_sessions(url: str, count: int) -> list[str]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        sessions = []
        for index in range(count):
            response = await client.post(
                "/api/stateful/session", json={"userId": f"user00{index % 2 + 1}"}
            )
            response.raise_for_status()
            sessions.append(response.headers["Session-ID"])
        return sessions


async def add_to_carts(
    urls: list[str], sessions: list[str], ledger: Ledger, stop: asyncio.Event
) -> None:
    """Each session adds prod001 in a loop, moving to the next instance each time."""

    async def one(turn: int, session_id: str, client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            turn += 1
            url = f"{urls[turn % len(urls)]}/api/stateful/cart/add"
            try:
                response = await client.post(
                    url, json={"productId": "prod001"}, headers={"Session-ID": session_id}
                )
            except httpx.HTTPError:
                ledger.unanswered[session_id] += 1
                ledger.failures.append(time.monotonic())
                await asyncio.sleep(0.05)  # a refused connection answers at once
                continue
            status = response.status_code
            if status == 200:
                ledger.acked[session_id] += 1
                continue
            ledger.failures.append(time.monotonic())
            if status == 503:
                ledger.unanswered[session_id] += 1
            elif status == 401:
                ledger.wrong_401 += 1
            else:
                ledger.server_errors += 1
                ledger.unanswered[session_id] += 1
                if len(ledger.samples) < 5:
                    ledger.samples.append(f"{status} {response.text[:300]}")

    limits = httpx.Limits(max_connections=len(sessions))
    async with httpx.AsyncClient(timeout=15, limits=limits) as client:
        await asyncio.gather(*(one(i, sid, client) for i, sid in enumerate(sessions)))


@dataclass
class Verdict:
    lost: int = 0
    invented: int = 0
    wrong_401: int = 0


async def verify(urls: list[str], sessions: list[str], ledger: Ledger) -> Verdict:
    """Read every cart through every instance: at least what was acknowledged, at most what
    was sent; every session still answers."""
    verdict = Verdict()
    async with httpx.AsyncClient(timeout=30) as client:
        for url in urls:
            for session_id in sessions:
                response = await client.get(
                    f"{url}/api/stateful/cart", headers={"Session-ID": session_id}
                )
                if response.status_code == 401:
                    verdict.wrong_401 += 1
                    continue
                response.raise_for_status()
                items = response.json()["data"]["cart"]["items"]
                quantity = sum(item["quantity"] for item in items)
                acked = ledger.acked[session_id]
                sent = acked + ledger.unanswered[session_id]
                verdict.lost += max(0, acked - quantity)
                verdict.invented += max(0, quantity - sent)
    return verdict
