"""Serve the front (statebridge/asgi/front.py) with Granian, on the sockets statebridge
already bound.

Granian parses and writes HTTP in Rust, off the Python thread, which leaves the Python
thread more of its time for the application than uvicorn + httptools does (the comparison
is in docs/perf-history.md, "The HTTP server"). Its embedded server normally binds its own
socket, but statebridge binds first (a busy port fails fast, forked workers share one
listener), so each listener's file descriptor (a duplicate: Granian closes what it is
given) is handed over.

The embedded API is marked experimental upstream, so pyproject pins Granian to a tested
range, and uvicorn stays one setting away: STATEBRIDGE_HTTP_SERVER=uvicorn (Settings.http_server).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import signal
import socket
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from statebridge.asgi.private import granian_bound_server_class

log = logging.getLogger("statebridge")
GRACE_SECONDS = 20  # as long as uvicorn's timeout_graceful_shutdown
KILL_SECONDS = 2  # after the grace period, before Granian's workers are killed


def available() -> bool:
    return importlib.util.find_spec("granian") is not None


def chosen(name: str) -> bool:
    """Granian unless the setting says uvicorn; `auto` falls back to uvicorn when Granian is
    not installed. Asking for Granian by name without it installed is the caller's error."""
    if name == "uvicorn":
        return False
    if name == "granian":
        return True
    return available()


BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DRAIN_BYTES = 64 * 1024 * 1024  # past this a client sending a refused body is cut off
DRAIN_SECONDS = 10.0


class Arriving:
    """Requests whose body is still arriving: Granian's stop would leave them unread."""

    def __init__(self) -> None:
        self.count = 0
        self.draining = False
        self.none = asyncio.Event()
        self.none.set()

    def enter(self) -> None:
        self.count += 1
        self.none.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self.none.set()


class Adapter:
    """What Granian does differently from uvicorn, smoothed over for the app.

    - It reports the local port as a string; ASGI (and the front, which picks the face by
      port) want an int.
    - When an answer goes out before the request body was read (a 413 for a body over the
      limit), it closes the connection while the client is still sending, so the client
      sees a broken pipe instead of the 413. uvicorn reads and discards the rest; so does
      this, within bounds.
    - Once stopped it reads no more of a request body, so a request whose body was still
      arriving would wait for it until killed. The adapter counts such requests, so that a
      stop can wait for their bodies first (`finish`); meanwhile each answer it starts says
      `Connection: close`."""

    def __init__(self, app: ASGIApp, host: str, port: int, arriving: Arriving) -> None:
        self.app = app
        self.server = (host, port)
        self.arriving = arriving

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["server"] = self.server
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.arriving.draining:
            send = closing(send)
        if scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        finished = False
        self.arriving.enter()

        async def receive_tracked() -> Message:
            nonlocal finished
            message = await receive()
            if not finished and (
                message["type"] != "http.request" or not message.get("more_body", False)
            ):
                finished = True
                self.arriving.leave()
            return message

        try:
            await self.app(scope, receive_tracked, send)
            if not finished:
                await drain(receive_tracked)
        finally:
            if not finished:
                self.arriving.leave()


def closing(send: Send) -> Send:
    """`send`, adding `Connection: close` to the answer's headers."""

    async def send_closing(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [*message.get("headers", []), (b"connection", b"close")]
            message = {**message, "headers": headers}
        await send(message)

    return send_closing


async def drain(receive: Receive) -> None:
    """Read and drop what is left of the request body (bounded in size and time)."""
    left = DRAIN_BYTES
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_SECONDS):
            while left > 0:
                message = await receive()
                if message["type"] != "http.request":
                    return
                left -= len(message.get("body", b""))
                if not message.get("more_body", False):
                    return


async def finish(servers: list[Any], arriving: Arriving, sockets: list[socket.socket]) -> None:
    """Let the request bodies still arriving come in (within the grace period), then stop
    Granian: it closes the listener and idle connections and lets the requests in flight
    finish.

    Until then the listener still takes connections (shutting it down under Granian makes
    its accept loop spin), and what comes in is answered with `Connection: close`."""
    arriving.draining = True
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(GRACE_SECONDS):
            await arriving.none.wait()
    stop_now(servers)  # a body still not in after the grace period gets a short while
    for sock in sockets:  # Granian closes its duplicate; with ours closed too, new
        sock.close()  # connections are refused instead of waiting in the backlog


def stop_now(servers: list[Any]) -> None:
    """Stop Granian, giving what is still in flight KILL_SECONDS before its workers go."""
    for server in servers:
        server.workers_kill_timeout = KILL_SECONDS
        server.stop()


def quiet_granian_logs() -> None:
    """Granian reconfigures logging when a server is built: send its logger to ours."""
    logger = logging.getLogger("_granian")
    logger.handlers.clear()
    logger.propagate = True
    logger.setLevel(logging.ERROR)  # it warns "experimental" at every start


async def serve(
    app: ASGIApp, sockets: list[tuple[socket.socket, str]], backlog: int, trusted_proxies: str
) -> None:
    """Serve `app` on every (socket, host) until SIGINT or SIGTERM, then drain gracefully.

    X-Forwarded-For/-Proto from `trusted_proxies` are applied as uvicorn would."""
    from granian.constants import HTTPModes, Interfaces
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    arriving = Arriving()

    def target(sock: socket.socket, host: str) -> Any:
        located = Adapter(app, host, sock.getsockname()[1], arriving)
        return ProxyHeadersMiddleware(located, trusted_hosts=trusted_proxies)  # type: ignore[arg-type]

    server_class = granian_bound_server_class()
    servers = [
        server_class(
            sock,
            target=target(sock, host),
            address=host,
            port=sock.getsockname()[1],
            interface=Interfaces.ASGINL,  # lifespan: the front has nothing to start
            http=HTTPModes.http1,
            websockets=False,
            log_enabled=False,
            backlog=backlog,
        )
        for sock, host in sockets
    ]
    quiet_granian_logs()
    for server in servers:
        server.workers_kill_timeout = GRACE_SECONDS
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []

    def stop() -> None:
        if stopping:  # a second signal: no more waiting for bodies still arriving
            log.info("Stopping now")
            stop_now(servers)
            return
        log.info("Shutting down")
        stopping.append(loop.create_task(finish(servers, arriving, [sock for sock, _ in sockets])))

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    try:
        await asyncio.gather(*(server.serve() for server in servers))
    except TimeoutError:  # the embedded server raises when a worker outlives the grace period
        log.warning(
            "requests still in flight after the %d s grace period were cut off", GRACE_SECONDS
        )
    finally:
        for task in stopping:
            task.cancel()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
