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
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from statebridge.ops.faults import servers
from statebridge.ops.faults.servers import wait_for_port as wait_for_port
from tests.support.servers import Server


class PrivateRedis(servers.PrivateRedis):
    """The fault tool's private Redis; a test skips (fails under strict mode) without it."""

    def start(self) -> PrivateRedis:
        try:
            super().start()
        except servers.MissingServer as exc:
            pytest.skip(str(exc))
        return self

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


@dataclass
class PrivatePostgres(servers.PrivatePostgres):
    """The fault tool's throwaway cluster, without fsync (these tests crash it on purpose
    and never lose the machine); a test skips (fails under strict mode) without initdb."""

    settings: str = "-c max_connections=200 -c fsync=off -c full_page_writes=off"

    def init(self) -> PrivatePostgres:
        try:
            super().init()
        except servers.MissingServer as exc:
            pytest.skip(str(exc))
        return self


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


PGBOUNCER = shutil.which("pgbouncer") or (
    "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
)


@dataclass
class PrivatePgBouncer:
    """Debian's PgBouncer in transaction mode on a free loopback port, in front of the
    PostgreSQL at `server_port` (trust auth; the `pgbouncer` admin database answers SHOW
    POOLS). Run as the `postgres` user when we are root: PgBouncer refuses root."""

    directory: Path
    server_port: int
    pool_size: int = 5
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> PrivatePgBouncer:
        if PGBOUNCER is None:
            pytest.skip("pgbouncer is not installed (scripts/ci-install-pgbouncer.sh)")
        self.port = self.port or servers.free_port()
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "userlist.txt").write_text('"postgres" ""\n')
        config = self.directory / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={self.server_port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.directory / 'userlist.txt'}\n"
            "admin_users = postgres\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {self.pool_size}\nmin_pool_size = 0\nreserve_pool_size = 0\n"
            "max_client_conn = 1000\nmax_db_connections = 0\n"
            "server_reset_query =\nignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self.directory / 'pgbouncer.log'}\n"
        )
        command = [PGBOUNCER, str(config)]
        if os.geteuid() == 0:
            os.chmod(self.directory, 0o755)
            for path in self.directory.iterdir():
                shutil.chown(path, "postgres", "postgres")
            shutil.chown(self.directory, "postgres", "postgres")
            command = ["runuser", "-u", "postgres", "--", *command]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_for_port(self.port)
        except Exception:
            self.stop()
            raise
        return self

    def pools(self, database: str) -> list[dict[str, str]]:
        """SHOW POOLS rows for `database`, through psql (the admin console speaks the simple
        query protocol only)."""
        import csv

        psql = servers.postgres_bin()
        assert psql is not None
        command = [str(psql / "psql"), "-h", "127.0.0.1", "-p", str(self.port)]
        command += ["-U", "postgres", "-d", "pgbouncer", "--csv", "-c", "SHOW POOLS"]
        done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=30)
        return [
            row for row in csv.DictReader(done.stdout.splitlines()) if row["database"] == database
        ]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@dataclass
class PrivateReplica(PrivatePostgres):
    """A streaming replica of a private primary, on its own port: `pg_basebackup -R` (which
    writes primary_conninfo and standby.signal), then started as a hot standby."""

    def clone(self, primary: PrivatePostgres) -> PrivateReplica:
        self.bin_dir = servers.postgres_bin()
        if self.bin_dir is None:
            pytest.skip("PostgreSQL's server programs (pg_basebackup, pg_ctl) are not installed")
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        source = ["-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"]
        # -R: primary_conninfo and standby.signal; -c fast: no wait for a spread checkpoint
        self._run("pg_basebackup", *source, "-D", str(self.data), "-R", "-X", "stream",
                  "-c", "fast", "--no-sync")  # fmt: skip
        self.start()
        return self
