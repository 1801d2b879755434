"""Run statebridge: bind the listeners, build the services, serve with uvicorn.

Sockets are bound before anything else so that a busy port fails fast and clearly; with
several workers they are bound once and shared by forked processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import uvicorn
from sqlalchemy.engine import make_url

from statebridge import granian_server, process
from statebridge.app import Face, build_front
from statebridge.config import Settings
from statebridge.observability.logs import configure as configure_logging
from statebridge.services import (
    Services,
    StartupError,
    build_services,
    check_schema,
    prepare_data_dir,
)

log = logging.getLogger("statebridge")
BACKLOG = 2048
UPSTREAM_IDLE_SECONDS = 75  # uvicorn's idle keep-alive; Granian's is 30 s (header_read_timeout)


@dataclass
class Listener:
    face: Face
    sock: socket.socket

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])


def bind(host: str, port: int, face: Face) -> Listener:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise StartupError(f"cannot listen on {host}:{port} ({face}): {reason}") from None
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return Listener(face, sock)


def bind_all(settings: Settings) -> list[Listener]:
    wanted: list[tuple[int, Face]] = [
        (settings.port, "combined"),
        (settings.stateless_port, "stateless"),
        (settings.stateful_port, "stateful"),
    ]
    listeners: list[Listener] = []
    try:
        for port, face in wanted:
            if port:
                listeners.append(bind(settings.host, port, face))
    except StartupError:
        for listener in listeners:
            listener.sock.close()
        raise
    if not listeners:
        raise StartupError("every listener is switched off (all ports are 0)")
    return listeners


def describe(settings: Settings, listeners: list[Listener]) -> str:
    url = make_url(settings.effective_database_url).render_as_string(hide_password=True)
    faces = ", ".join(
        f"{listener.face} on {settings.host}:{listener.port}" for listener in listeners
    )
    return f"{faces}; database {url}; sessions {settings.effective_session_backend}"


async def serve_worker(settings: Settings, listeners: list[Listener], migrate: bool) -> None:
    services = await build_services(settings, migrate=migrate)
    configure_logging(settings.log_level, settings.log_format, services.instance_id)
    services.start_background()
    close = closer(services)
    front = None
    try:
        faces = {listener.port: listener.face for listener in listeners}
        front = build_front(services, faces, on_shutdown=close)
        process.settle_heap()
        if granian_server.chosen(settings.http_server):
            log.info(
                "statebridge %s ready: %s", services.instance_id, describe(settings, listeners)
            )
            sockets = [(listener.sock, settings.host) for listener in listeners]
            await granian_server.serve(front, sockets, BACKLOG, settings.forwarded_allow_ips)
            return
        config = uvicorn.Config(
            front,
            log_level=settings.log_level,
            access_log=False,  # statebridge writes its own JSON access log
            log_config=None,  # uvicorn's loggers propagate to statebridge's handler
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            server_header=False,
            timeout_graceful_shutdown=20,
            # longer than nginx keeps an idle upstream connection (10 s), so nginx always
            # closes first and never reuses a connection the app is closing
            timeout_keep_alive=UPSTREAM_IDLE_SECONDS,
            lifespan="on",
        )
        server = uvicorn.Server(config)
        log.info("statebridge %s ready: %s", services.instance_id, describe(settings, listeners))
        await server.serve(sockets=[listener.sock for listener in listeners])
    finally:
        if front is not None:
            front.flush_logs()
        await close()


def closer(services: Services) -> Callable[[], Awaitable[None]]:
    """Close the pools once, whichever comes first: lifespan shutdown or leaving serve."""
    closed = False

    async def close() -> None:
        nonlocal closed
        if not closed:
            closed = True
            await services.close()
            log.info("statebridge %s stopped: connection pools closed", services.instance_id)

    return close


def run_loop(settings: Settings, listeners: list[Listener], migrate: bool) -> None:
    loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard] on Linux
        pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve_worker(settings, listeners, migrate))


async def _migrate_once(settings: Settings, migrate: bool) -> None:
    from statebridge.db.engine import create_engine

    engine = create_engine(settings.effective_database_url, pool_size=1)
    try:
        await check_schema(engine, settings, migrate)
    finally:
        await engine.dispose()


def serve(settings: Settings, migrate: bool = False) -> None:
    """Serve until SIGINT/SIGTERM; raises StartupError on a configuration problem."""
    configure_logging(settings.log_level, settings.log_format, settings.instance_id)
    problem = settings.production_problem()
    if problem:
        raise StartupError(problem)
    if settings.http_server == "granian" and not granian_server.available():
        raise StartupError("STATEBRIDGE_HTTP_SERVER=granian, but Granian is not installed")
    prepare_data_dir(settings)
    listeners = bind_all(settings)
    if settings.workers == 1:
        run_loop(settings, listeners, migrate)
        return
    asyncio.run(_migrate_once(settings, migrate))
    children: list[int] = []
    for _ in range(settings.workers):
        pid = os.fork()
        if pid == 0:  # child
            code = 0
            try:
                run_loop(settings, listeners, migrate=False)
            except BaseException:
                log.exception("worker failed")
                code = 1
            finally:
                os._exit(code)
        children.append(pid)
    for listener in listeners:  # the workers have them; a copy here would keep a stopping
        listener.sock.close()  # worker's listener open, its backlog filling, unanswered

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    failed = 0
    for child in children:
        _, status = os.waitpid(child, 0)
        failed |= os.waitstatus_to_exitcode(status) not in (0, -signal.SIGTERM, -signal.SIGINT)
    if failed:
        sys.exit(1)
