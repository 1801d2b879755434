"""Private PostgreSQL and Redis servers, on free loopback ports, that a test may stop, restart
and flush: the machine's shared ones (5432, 6379) serve other test runs and are never touched.

Redis runs as a child process without persistence (`--save '' --appendonly no`), so a restart
comes back empty, like a cache node that was replaced. PostgreSQL is a throwaway cluster made
with Debian's `initdb` in a temporary directory, run as the `postgres` OS user when we are
root (initdb refuses root).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.servers import Server, free_port


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@dataclass
class PrivateRedis:
    """`redis-server` as a child process; `stop`/`start` keep the port, `flush` empties it."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
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

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL: no shutdown, nothing saved (it keeps nothing on disk anyway)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def flush(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=5)
        try:
            client.flushall()
        finally:
            client.close()

    def command_calls(self) -> dict[str, int]:
        """Commands Redis has executed so far, by name (INFO commandstats), minus those that
        reading it costs (INFO, and the client's own connection set-up)."""
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=5)
        try:
            stats = client.info("commandstats")
        finally:
            client.close()
        return {
            name.removeprefix("cmdstat_"): int(value["calls"])
            for name, value in stats.items()
            if name not in ("cmdstat_info", "cmdstat_client|setinfo", "cmdstat_hello")
        }


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@dataclass
class PrivatePostgres:
    """A throwaway PostgreSQL cluster; `stop(mode)`/`start` simulate a restart or a crash."""

    directory: Path
    port: int = field(default_factory=free_port)
    bin_dir: Path | None = None

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
            pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync", "--no-instructions")  # fmt: skip
        self.start()
        _execute(self.url("postgres"), "CREATE DATABASE statebridge")
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} "
            "-c fsync=off -c full_page_writes=off -c max_connections=200"
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


def _execute(url: str, sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def fetch(url: str, sql: str, *args: object) -> list[dict[str, object]]:
    import asyncpg

    async def run() -> list[dict[str, object]]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return [dict(row) for row in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return asyncio.run(run())


@contextlib.contextmanager
def private_stack() -> Iterator[tuple[PrivatePostgres, PrivateRedis]]:
    """A private PostgreSQL and Redis, removed afterwards (also when the test fails)."""
    # PostgreSQL's socket directory must be short and reachable by the postgres user
    root = Path(tempfile.mkdtemp(prefix="sb-faults-"))
    os.chmod(root, 0o755)
    postgres = PrivatePostgres(root / "pg")
    redis = PrivateRedis(root / "redis")
    try:
        postgres.init()
        redis.start()
        yield postgres, redis
    finally:
        redis.stop()
        postgres.destroy()
        shutil.rmtree(root, ignore_errors=True)


OWN_REDIS_DB = 12  # the shared suite uses 13; these tests never flush either


@contextlib.contextmanager
def own_server(kind: str, directory: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    """A statebridge of our own: `embedded` (SQLite) or `services` (a fresh database on the
    shared PostgreSQL, Redis db 12), so that what these tests write (preferences, sessions)
    never meets another test's expectations."""
    from tests.support.databases import REDIS_BASE_URL, drop_pg_database, new_pg_database

    extra = dict(env or {})
    name = None
    args: list[str] = []
    if kind == "services":
        try:
            name, url = new_pg_database()
        except Exception as exc:
            pytest.skip(f"PostgreSQL is not reachable: {exc}")
        extra = {"DATABASE_URL": url, "REDIS_URL": f"{REDIS_BASE_URL}/{OWN_REDIS_DB}", **extra}
        args = ["--migrate"]
    server = Server(env=extra, data_dir=directory, args=args)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if name is not None:
            drop_pg_database(name)
