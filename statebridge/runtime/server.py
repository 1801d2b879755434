"""Run statebridge: bind the listeners, build the services, serve with Granian or uvicorn.

Sockets are bound before anything else so that a busy port fails fast and clearly; with
several workers they are bound once and shared by forked processes, which the server
(`Supervisor`) keeps at their number until it is told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import FrameType

import uvicorn
from sqlalchemy.engine import make_url

from statebridge.api.app import Face, build_front
from statebridge.asgi.private import uvicorn_envelope_protocol
from statebridge.config import Settings
from statebridge.observability import process
from statebridge.observability.logs import configure as configure_logging
from statebridge.observability.metrics import METRICS
from statebridge.runtime import granian as granian_server
from statebridge.wiring.services import (
    Services,
    StartupError,
    build_services,
    check_schema,
    prepare_data_dir,
)

log = logging.getLogger("statebridge")
BACKLOG = 2048
UPSTREAM_IDLE_SECONDS = 75  # uvicorn's idle keep-alive; Granian's is 30 s (header_read_timeout)
RESTART_FIRST_SECONDS = 0.5  # a worker that died is started again after this long,
RESTART_MAX_SECONDS = 30.0  # twice as long each time it dies again soon, up to this;
STABLE_SECONDS = 60.0  # a worker that lived this long starts the wait over
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


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
            # its parser's 400s in the envelope too, with the headers the app sends
            http=uvicorn_envelope_protocol(front.extra),
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
    except ImportError:  # pragma: no cover - a dependency everywhere but Windows
        pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve_worker(settings, listeners, migrate))


async def _migrate_once(settings: Settings, migrate: bool) -> None:
    from statebridge.db.engine import create_engine

    engine = create_engine(settings.effective_database_url, pool_size=1, pooled=settings.pooled)
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
    if Supervisor(settings, listeners).run():
        sys.exit(1)


@dataclass
class Slot:
    """One of the workers the server keeps running."""

    pid: int = 0  # 0: none running
    started: float = 0.0
    delay: float = 0.0  # the last wait before a restart (0: none yet)
    due: float | None = None  # when a restart is due


class Supervisor:
    """Forks the workers, and keeps them at their number while the server runs.

    A worker that dies (killed, crashed, or stopped on its own) is logged as a warning with
    its exit status, then started again after RESTART_FIRST_SECONDS; when it keeps dying
    soon after starting, the wait doubles up to RESTART_MAX_SECONDS, and it starts over
    once a worker has lived STABLE_SECONDS. Restarts are counted in
    statebridge_worker_restarts_total (a count the workers' /metrics read).

    SIGTERM and SIGINT close the server's copies of the listeners, are passed on to every
    worker, and end the restarts: the server waits for the workers' graceful stop and
    exits 1 only if one of them failed it."""

    def __init__(self, settings: Settings, listeners: list[Listener]) -> None:
        self.settings = settings
        self.listeners = listeners  # kept open here: a replacement worker needs them
        self.slots = [Slot() for _ in range(settings.workers)]
        self.stopping = False
        self.failed = False
        self.wakeup = (-1, -1)

    def run(self) -> bool:
        """Serve until stopped; True if a worker failed its stop."""
        self.wakeup = os.pipe()
        for fd in self.wakeup:
            os.set_blocking(fd, False)
        # every signal below writes to the pipe, so a wait in select() ends at once
        previous_wakeup = signal.set_wakeup_fd(self.wakeup[1])
        signal.signal(signal.SIGCHLD, self.on_child)
        for signum in STOP_SIGNALS:
            signal.signal(signum, self.stop)
        try:
            for slot in self.slots:
                self.spawn(slot)
            while True:
                self.reap()
                self.restart_due()
                if not self.running():
                    break
                select.select([self.wakeup[0]], [], [], self.wait_seconds())
                with contextlib.suppress(BlockingIOError):
                    while os.read(self.wakeup[0], 512):
                        pass
        finally:
            for signum in (signal.SIGCHLD, *STOP_SIGNALS):
                signal.signal(signum, signal.SIG_DFL)
            signal.set_wakeup_fd(previous_wakeup)
            for fd in self.wakeup:
                os.close(fd)
            self.close_listeners()
        return self.failed

    def running(self) -> bool:
        """A worker is running, or one is to be started again."""
        return any(slot.pid or (slot.due is not None and not self.stopping) for slot in self.slots)

    def on_child(self, _signum: int, _frame: FrameType | None) -> None:
        """Nothing: the signal's byte on the wake-up pipe ends the wait, then `reap` runs."""

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        if not self.stopping:
            self.stopping = True
            for slot in self.slots:
                slot.due = None
            # the workers' graceful stop closes their listeners; a copy left open here
            # would keep taking connections into a backlog nobody answers
            self.close_listeners()
        for slot in self.slots:
            if slot.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signum)

    def close_listeners(self) -> None:
        for listener in self.listeners:
            listener.sock.close()

    def spawn(self, slot: Slot) -> None:
        # no handler of the server's may run in the child before it has its own
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD, *STOP_SIGNALS})
        try:
            pid = os.fork()
            if pid == 0:
                self.become_worker(blocked)
            # recorded before a stop signal can be handled, so that the stop reaches it
            slot.pid, slot.started, slot.due = pid, time.monotonic(), None
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def become_worker(self, mask: Iterable[int]) -> None:
        """Run one worker in this (forked) process; never returns."""
        code = 0
        try:
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGCHLD, *STOP_SIGNALS):
                signal.signal(signum, signal.SIG_DFL)
            for fd in self.wakeup:
                os.close(fd)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            run_loop(self.settings, self.listeners, migrate=False)
        except BaseException:
            log.exception("worker failed")
            code = 1
        finally:
            os._exit(code)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = next((slot for slot in self.slots if slot.pid == pid), None)
            if slot is None:
                continue
            slot.pid = 0
            code = os.waitstatus_to_exitcode(status)
            if self.stopping:
                self.failed |= code not in (0, -signal.SIGTERM, -signal.SIGINT)
                continue
            lived = time.monotonic() - slot.started
            self.schedule(slot, lived)
            log.warning(
                "worker %d %s after %.1f s; starting another in %.1f s",
                pid,
                exit_status(code),
                lived,
                slot.delay,
            )

    def schedule(self, slot: Slot, lived: float) -> None:
        """The next start of `slot`: the wait doubles while its workers die young."""
        if slot.delay == 0 or lived >= STABLE_SECONDS:
            slot.delay = RESTART_FIRST_SECONDS
        else:
            slot.delay = min(slot.delay * 2, RESTART_MAX_SECONDS)
        slot.due = time.monotonic() + slot.delay

    def restart_due(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.due is None or slot.due > now or self.stopping:
                continue
            try:
                self.spawn(slot)
            except OSError as exc:  # out of processes or memory, for now
                self.schedule(slot, 0.0)
                log.error("cannot start a worker (%s); trying again in %.1f s", exc, slot.delay)
                continue
            METRICS.worker_restarts.add()
            log.info("worker %d started in place of the one that died", slot.pid)

    def wait_seconds(self) -> float | None:
        """Until the next restart is due; None (until a signal) when none is."""
        dues = [slot.due for slot in self.slots if slot.due is not None]
        if self.stopping or not dues:
            return None
        return max(0.0, min(dues) - time.monotonic())


def exit_status(code: int) -> str:
    """`os.waitstatus_to_exitcode`'s code in words: 'exited with status 1', 'was killed by
    SIGKILL (status -9)'."""
    if code >= 0:
        return f"exited with status {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"was killed by {name} (status {code})"
