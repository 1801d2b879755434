"""`statebridge demo scale-out`: the lesson the stateful server was built to teach.

Two local instances, twice. First with sessions in each process's memory
(`STATEBRIDGE_SESSION_BACKEND=memory`, Phase 1's design): a session made on instance A is
unknown to instance B, as when a load balancer sends the next request elsewhere. Then with
the shared backend (this environment's DATABASE_URL/REDIS_URL, else one embedded SQLite file
for both): B finds A's session and its cart.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from statebridge.client import Exchange, ResponseError, StatefulClient
from statebridge.ops.demo.console import Printer

USER = "user001"
NAMES = ("A", "B")


@dataclass
class Outcome:
    """What instance B answered for a session made on A, per backend."""

    memory_status: int = 0
    shared_status: int = 0
    shared_backend: str = ""

    @property
    def passed(self) -> bool:
        return self.memory_status == 401 and self.shared_status == 200


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shared_backend(env: dict[str, str]) -> str:
    if not env.get("DATABASE_URL"):
        return "embedded SQLite (one file for both instances)"
    backend = env.get("STATEBRIDGE_SESSION_BACKEND", "auto")
    if backend in ("auto", "memory", ""):
        backend = "redis" if env.get("REDIS_URL") else "sql"
    return "PostgreSQL + Redis" if backend == "redis" else "PostgreSQL"


@contextlib.contextmanager
def instances(
    env: dict[str, str], data_dir: Path, migrate: bool, timeout: float = 60.0
) -> Iterator[list[str]]:
    """Two statebridge processes on this environment, combined port only; their URLs."""
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for index, name in enumerate(NAMES):
            port = free_port()
            command = [sys.executable, "-m", "statebridge", "serve", "--port", str(port),
                       "--stateless-port", "0", "--stateful-port", "0"]  # fmt: skip
            if migrate and index == 0:
                command.append("--migrate")
            own = {**env, "STATEBRIDGE_INSTANCE_ID": f"scale-out-{name.lower()}"}
            log = open(data_dir / f"instance-{name}.log", "ab")  # noqa: SIM115
            with log:
                processes.append(
                    subprocess.Popen(command, env=own, stdout=log, stderr=subprocess.STDOUT)
                )
            urls.append(f"http://127.0.0.1:{port}")
            wait_ready(urls[-1], processes[-1], data_dir / f"instance-{name}.log", timeout)
        yield urls
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            last = log.read_text(errors="replace").strip().splitlines()[-1:]
            raise RuntimeError(f"instance {url} exited at start: {' '.join(last)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"instance {url} not ready after {timeout:.0f}s")


async def across(urls: list[str], out: Printer) -> int:
    """A session and a cart made on A, then read on B: B's status."""

    def hook(side: str) -> Callable[[Exchange], None]:
        return lambda exchange: out.exchange(exchange, side)

    first = StatefulClient(f"{urls[0]}/api/stateful", on_exchange=hook("instance A"))
    second = StatefulClient(f"{urls[1]}/api/stateful", on_exchange=hook("instance B"))
    async with first, second:
        await first.create_session(USER, {"demo": "scale-out"})
        await first.add_to_cart("prod001", 2)
        await first.get_cart()
        out.step("The load balancer sends the next request to instance B:")
        second.session_id = first.session_id
        try:
            await second.get_cart()
            status = 200
        except ResponseError as exc:
            status = exc.status_code
        with contextlib.suppress(ResponseError):
            await first.delete_session()
    return status


async def run(out: Printer, migrate: bool = False) -> Outcome:
    base = dict(os.environ)
    outcome = Outcome(shared_backend=shared_backend(base))
    with tempfile.TemporaryDirectory(prefix="statebridge-scale-out-") as scratch:
        data_dir = Path(scratch)
        env = {**base, "STATEBRIDGE_DATA_DIR": str(data_dir / "data")}
        out.section("1. Sessions in each process's memory (Phase 1's design)")
        with instances({**env, "STATEBRIDGE_SESSION_BACKEND": "memory"}, data_dir, migrate) as urls:
            outcome.memory_status = await across(urls, out)
        if outcome.memory_status == 401:
            out.say("❌ Instance B does not know the session: it lived in A's memory.", "red")
        shared = dict(env)
        if shared.get("STATEBRIDGE_SESSION_BACKEND") == "memory":
            shared["STATEBRIDGE_SESSION_BACKEND"] = "auto"
        out.section(f"2. Sessions in the shared backend: {outcome.shared_backend}")
        with instances(shared, data_dir, migrate) as urls:
            outcome.shared_status = await across(urls, out)
        if outcome.shared_status == 200:
            out.say("✅ Instance B finds the session and its cart: any instance can answer.")
    out.takeaways(
        "Scale-out",
        [
            f"memory backend: instance B answered {outcome.memory_status} for A's session",
            f"{outcome.shared_backend}: instance B answered {outcome.shared_status}",
            "State kept in one process ties a client to that process;"
            " a shared store lets any instance serve any request",
        ],
    )
    return outcome
