"""Before the runs: what each target's catalog holds, and its live sessions.

Sessions are created concurrently (a bounded number of connections, each creating one after
another), with a progress line every second, so that 100,000 of them take seconds, not
minutes. When a case needs a started workflow, each session gets one right after it is
created.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson

from statebridge.ops.bench.loadgen import on_fresh_loop, session_of
from statebridge.ops.bench.model import Target
from statebridge.ops.http import Answer, Connection, SocketError, tls_context
from statebridge.wording import counted

Say = Callable[[str], None]
CREATORS = 64  # connections creating sessions at once
PROGRESS_EVERY = 1.0  # seconds


class PrepareError(RuntimeError):
    """A target refused what the benchmark needs before it can run."""


def checked(answer: Answer, what: str) -> Answer:
    if not 200 <= answer.status < 300:
        raise PrepareError(f"{what} answered {answer.status}: {answer.body[:200]!r}")
    return answer


def base_of(url: str) -> str:
    return urlsplit(url).path.rstrip("/")


async def learn_catalog(target: Target, timeout: float, insecure: bool) -> None:
    """The users (with their preferences) and products the requests will name."""
    link = Connection(target.url, timeout, tls_context(target.url, insecure))
    base = base_of(target.url)
    try:
        users = checked(await link.request("GET", f"{base}/users"), "GET /users")
        goods = checked(await link.request("GET", f"{base}/products"), "GET /products")
    finally:
        await link.close()
    listed: list[dict[str, Any]] = users.json()["data"]["users"]
    target.users = [user["id"] for user in listed]
    target.preferences = {
        user["id"]: orjson.dumps(user.get("preferences") or {}).decode() for user in listed
    }
    target.products = [product["id"] for product in goods.json()["data"]["products"]]
    if not target.users or not target.products:
        raise PrepareError("the catalog has no users or no products")


async def create_sessions(
    target: Target, count: int, workflow: bool, timeout: float, insecure: bool, say: Say
) -> None:
    """`count` live sessions, users taken in turn; with `workflow`, each one started."""
    url = target.stateful_url
    base = base_of(url)
    made: list[tuple[str, str] | None] = [None] * count
    numbers = itertools.count()
    started = time.monotonic()
    progress = [started + PROGRESS_EVERY]

    def report() -> None:
        now = time.monotonic()
        if now >= progress[0]:
            progress[0] = now + PROGRESS_EVERY
            done = sum(1 for item in made if item is not None)
            rate = done / (now - started)
            say(f"  {target.name}: {done:,}/{count:,} sessions ({rate:,.0f}/s)")

    async def creator() -> None:
        link = Connection(url, timeout, tls_context(url, insecure))
        try:
            while (number := next(numbers)) < count:
                user = target.users[number % len(target.users)]
                body = {"userId": user}
                answer = checked(
                    await link.request("POST", f"{base}/session", body), "POST /session"
                )
                session = session_of(answer)
                if session is None:
                    raise PrepareError("POST /session answered no session id")
                if workflow:
                    headers = {"Session-ID": session}
                    start = await link.request("POST", f"{base}/workflow/start", {}, headers)
                    checked(start, "POST /workflow/start")
                made[number] = (session, user)
                report()
        finally:
            await link.close()

    await asyncio.gather(*(creator() for _ in range(min(CREATORS, count))))
    target.sessions = [item for item in made if item is not None]
    target.sessions_created = time.monotonic()
    seconds = target.sessions_created - started
    say(f"  {target.name}: {counted(count, 'session', grouped=True)} in {seconds:.1f} s")


def prepare(
    target: Target,
    sessions: int,
    workflow: bool,
    insecure: bool,
    say: Say,
    timeout: float = 10.0,
) -> None:
    """Learn the target's catalog and, when `sessions` > 0, create that many sessions."""

    async def work() -> None:
        await learn_catalog(target, timeout, insecure)
        if sessions > 0:
            await create_sessions(target, sessions, workflow, timeout, insecure, say)

    try:
        on_fresh_loop(work())
    except (PrepareError, SocketError, KeyError, TypeError, ValueError) as exc:
        raise RuntimeError(f"{target.name} ({target.url}, {target.stateful_url}): {exc}") from exc
