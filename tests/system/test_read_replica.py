"""DATABASE_READ_URL: catalog reads from a real streaming replica (a private primary made
with initdb, the replica with pg_basebackup -R, each on its own loopback port); changes and
the reads that must see them on the primary; the replica down, the primary answers and
`statebridge_db_read_fallbacks_total` counts it."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.commands import statebridge
from tests.support.envelope import assert_envelope
from tests.support.private_services import PrivatePostgres, PrivateReplica
from tests.support.servers import Server

pytestmark = pytest.mark.replica


def query(url: str, sql: str) -> list[Any]:
    async def run() -> list[Any]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    return asyncio.run(run())


def caught_up(primary: PrivatePostgres, replica: PrivateReplica, timeout: float = 30.0) -> None:
    """Wait until the replica has replayed everything the primary has written so far."""
    (target,) = query(primary.url(), "SELECT pg_current_wal_lsn()::text AS lsn")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = query(replica.url(), f"SELECT pg_last_wal_replay_lsn() >= '{target['lsn']}' AS done")
        if done[0]["done"]:
            return
        time.sleep(0.1)
    raise AssertionError("the replica did not catch up")


@pytest.fixture(scope="module")
def replicated() -> Iterator[tuple[PrivatePostgres, PrivateReplica]]:
    root = Path(tempfile.mkdtemp(prefix="sb-replica-"))
    os.chmod(root, 0o755)
    primary = PrivatePostgres(root / "primary")
    replica = PrivateReplica(root / "replica")
    try:
        primary.init()
        upgraded = statebridge({"DATABASE_URL": primary.url()}, "db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        replica.clone(primary)
        assert query(replica.url(), "SELECT pg_is_in_recovery() AS standby")[0]["standby"]
        yield primary, replica
    finally:
        replica.destroy()
        primary.destroy()
        shutil.rmtree(root, ignore_errors=True)


def fallbacks(server: Server) -> int:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    match = re.search(r"^statebridge_db_read_fallbacks_total (\d+)$", text, re.MULTILINE)
    assert match is not None, "the fallback counter is not exported"
    return int(match.group(1))


def themes(server: Server) -> dict[str, Any]:
    users = assert_envelope(httpx.get(f"{server.url}/users", timeout=10), 200)["data"]["users"]
    return {user["id"]: user["preferences"].get("theme") for user in users}


def test_catalog_reads_from_the_replica_and_falls_back_to_the_primary(
    replicated: tuple[PrivatePostgres, PrivateReplica], tmp_path: Path
) -> None:
    primary, replica = replicated
    env = {"DATABASE_URL": primary.url(), "DATABASE_READ_URL": replica.url()}
    started: list[Server] = []

    def start(name: str) -> Server:
        server = Server(env, tmp_path / name, args=["--stateless-port", "0"]).start(timeout=60)
        started.append(server)
        return server

    try:
        writer = start("writer")  # seeds the empty catalog on the primary
        caught_up(primary, replica)
        reader = start("reader")
        assert "user001" in themes(reader)
        # the reader's catalog came from the replica: its connections are there
        on_replica = query(
            replica.url(),
            "SELECT count(*) AS n FROM pg_stat_activity "
            "WHERE datname = 'statebridge' AND pid <> pg_backend_pid()",
        )
        assert on_replica[0]["n"] >= 1
        assert fallbacks(reader) == 0

        # the replica stops replaying: a change is still read back at once, on both
        # instances, from the primary, while the replica has not seen it
        query(replica.url(), "SELECT pg_wal_replay_pause()")
        try:
            with httpx.Client(base_url=writer.url, timeout=10) as client:
                created = client.post("/api/stateful/session", json={"userId": "user001"})
                headers = {"Session-ID": created.headers["Session-ID"]}
                changed = client.put(
                    "/api/stateful/profile/preferences",
                    json={"preferences": {"theme": "replica-lag"}},
                    headers=headers,
                )
                assert_envelope(changed, 200)
            assert themes(writer)["user001"] == "replica-lag"
            assert themes(reader)["user001"] == "replica-lag"
            stale = query(replica.url(), "SELECT preferences FROM users WHERE id = 'user001'")
            assert "replica-lag" not in str(stale[0]["preferences"])
        finally:
            query(replica.url(), "SELECT pg_wal_replay_resume()")
        caught_up(primary, replica)

        # the replica down: an instance that starts now reads from the primary, counted
        replica.stop()
        late = start("late")
        assert themes(late)["user001"] == "replica-lag"
        assert fallbacks(late) >= 1
        assert httpx.get(f"{late.url}/health/ready", timeout=10).status_code == 200
    finally:
        for server in started:
            server.stop()
