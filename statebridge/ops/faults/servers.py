"""Private PostgreSQL and Redis servers and statebridge instances, on loopback ports of their
own, that a fault may stop, kill, stall, flush and restart. Stopped by process id."""

from __future__ import annotations

import contextlib
import glob
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# below the kernel's ephemeral range, so no outgoing connection takes a port picked here
PORT_RANGE = (20000, 32000)
_handed_out: set[int] = set()


class MissingServer(RuntimeError):
    """A server program these faults need is not installed."""


def free_port() -> int:
    for _ in range(1000):
        port = random.randrange(*PORT_RANGE)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free loopback port in {PORT_RANGE}")


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


@dataclass
class PrivateRedis:
    """`redis-server` as a child process, keeping nothing on disk: a restart comes back
    empty, like a cache node that was replaced."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise MissingServer("redis-server is not installed")
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self.directory)],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: no shutdown, nothing kept."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self, resume: bool = False) -> None:
        """SIGSTOP (a stalled Redis: connections stay open, nothing answers), or SIGCONT."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT if resume else signal.SIGSTOP)

    def flush(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=5)
        try:
            client.flushall()
        finally:
            client.close()


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@dataclass
class PrivatePostgres:
    """A throwaway PostgreSQL cluster made with initdb (run as the `postgres` user when we
    are root: initdb refuses root)."""

    directory: Path
    port: int = field(default_factory=free_port)
    bin_dir: Path | None = None
    settings: str = "-c max_connections=200"  # more `-c name=value` for the server

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def url(self, database: str = "statebridge") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert self.bin_dir is not None
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=60)

    def init(self) -> PrivatePostgres:
        self.bin_dir = postgres_bin()
        if self.bin_dir is None:
            raise MissingServer("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync", "--no-instructions")  # fmt: skip
        self.start()
        self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "-d", "postgres", "-q", "-c", "CREATE DATABASE statebridge")  # fmt: skip
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} {self.settings}"
        )
        log = str(self.directory / "postgres.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log,
                  "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """`fast`: a clean shutdown; `immediate`: a crash (recovery replays the WAL)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop",
                  check=False)  # fmt: skip

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class Instance:
    """One `statebridge serve` on its own port, sharing the private database and Redis."""

    name: str
    env: dict[str, str]
    log_dir: Path
    migrate: bool = False
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Instance:
        import httpx

        command = [sys.executable, "-m", "statebridge", "serve", "--port", str(self.port),
                   "--stateless-port", "0", "--stateful-port", "0"]  # fmt: skip
        if self.migrate:
            command.append("--migrate")
        clean = {k: v for k, v in os.environ.items() if not k.startswith("STATEBRIDGE_")}
        env = {
            **clean,
            **self.env,
            "STATEBRIDGE_INSTANCE_ID": self.name,
            "STATEBRIDGE_DATA_DIR": str(self.log_dir / self.name),
            "STATEBRIDGE_ACCESS_LOG": "false",
        }
        with open(self.log_dir / f"{self.name}.log", "ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"instance {self.name} exited at start (its log: {log.name})")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"instance {self.name} not ready after {timeout:.0f} s")

    def signal(self, sig: int, wait: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(wait)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def stop(self) -> None:
        self.signal(signal.SIGTERM)
