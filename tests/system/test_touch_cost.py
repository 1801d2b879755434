"""What a session read writes (touch without rewrite), measured on private servers.

A read slides the idle expiry. On Redis that is one Lua call that sets two small hash fields
(`lastMs`, `expiresMs`), the key's expiry and the live index's score: the session's data is
not written again, so the bytes written per read do not grow with the data. PostgreSQL's
copy of the expiry is refreshed lazily (STATEBRIDGE_SESSION_DB_REFRESH), so it is not written
per read. Each test prints its figures (run with `-s` to see them)."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
import redis

from tests.support.private_services import PrivateRedis, fetch, private_stack
from tests.support.servers import Server

READS = 200
SMALL = {"note": "x" * 100}
LARGE = {"blob": base64.b64encode(os.urandom(24_000)).decode()}  # 32,000 characters, not
# compressible away
QUIET = {"STATEBRIDGE_ACCESS_LOG": "off", "STATEBRIDGE_LOG_LEVEL": "warning"}


def reads(server: Server, data: dict[str, str]) -> None:
    created = httpx.post(
        f"{server.stateful_url}/session", json={"userId": "user001", "data": data}, timeout=10
    )
    headers = {"Session-ID": created.headers["Session-ID"]}
    with httpx.Client(base_url=server.stateful_url, headers=headers, timeout=10) as client:
        client.get("/session")  # the first read may load scripts, warm caches
        yield_point = yield
        assert yield_point is None
        for _ in range(READS):
            assert client.get("/session").status_code == 200


def aof_size(client: redis.Redis) -> int:
    deadline = time.monotonic() + 30
    while True:
        info = client.info("persistence")
        busy = info["aof_rewrite_in_progress"] or info["aof_rewrite_scheduled"]
        if not busy or time.monotonic() > deadline:
            return int(info["aof_current_size"])
        time.sleep(0.1)


def test_a_redis_read_writes_the_same_few_bytes_whatever_the_data(tmp_path: Path) -> None:
    with private_stack() as (postgres, private_redis):
        assert isinstance(private_redis, PrivateRedis)
        database = postgres.url()
        client = redis.Redis.from_url(private_redis.url)
        client.config_set("appendonly", "yes")  # each write is appended: the bytes it costs
        env = {"DATABASE_URL": database, "REDIS_URL": private_redis.url, **QUIET}
        server = Server(env, tmp_path, ["--migrate"]).start()
        figures: dict[str, dict[str, float]] = {}
        try:
            for name, data in (("small", SMALL), ("large", LARGE)):
                walk = reads(server, data)
                next(walk)
                aof, net = aof_size(client), client.info("stats")["total_net_input_bytes"]
                calls = private_redis.command_calls()
                wal = fetch(database, "SELECT pg_current_wal_lsn() AS lsn")[0]["lsn"]
                with pytest.raises(StopIteration):
                    walk.send(None)
                after_calls = private_redis.command_calls()
                wal_after = fetch(
                    database, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1) AS d", wal
                )[0]["d"]
                figures[name] = {
                    "data_bytes": len(json.dumps(data)),
                    "aof_bytes_per_read": (aof_size(client) - aof) / READS,
                    "redis_input_bytes_per_read": (
                        client.info("stats")["total_net_input_bytes"] - net
                    )
                    / READS,
                    "postgres_wal_bytes_per_read": float(wal_after) / READS,  # type: ignore[arg-type]
                    **{
                        f"calls_per_read.{command}": (after_calls[command] - calls.get(command, 0))
                        / READS
                        for command in sorted(after_calls)
                        if after_calls[command] != calls.get(command, 0)
                    },
                }
        finally:
            server.stop()
            client.close()
    print("\ntouch cost, redis backend:", json.dumps(figures, indent=2))
    small, large = figures["small"], figures["large"]
    assert large["aof_bytes_per_read"] < 400, figures  # the 32 KB of data are not rewritten
    # the data's size changes nothing: the two walks differ only in how many reads landed in
    # the same millisecond as the one before (their ZADD leaves the score as it was, so Redis
    # does not append it: up to one ZADD, about 100 bytes, a read), never by the 32 KB
    assert abs(large["aof_bytes_per_read"] - small["aof_bytes_per_read"]) < 128, figures
    assert large["calls_per_read.evalsha"] == 1.0, figures  # one Lua call per read
    assert large.get("calls_per_read.hset", 0) == 1.0, figures  # two small fields, once
    assert large["postgres_wal_bytes_per_read"] < 100, figures  # the lazy refresh


def test_what_a_postgresql_read_writes(tmp_path: Path) -> None:
    """Measured, not asserted against a target: on PostgreSQL alone a read slides the expiry
    with an UPDATE of the two time columns; the data, stored out of line (TOAST) when large,
    is not copied, and a small row is written again whole as a new row version."""
    with private_stack() as (postgres, _redis):
        database = postgres.url()
        env = {"DATABASE_URL": database, "STATEBRIDGE_SESSION_BACKEND": "sql", **QUIET}
        server = Server(env, tmp_path, ["--migrate"]).start()
        figures = {}
        try:
            for name, data in (("small", SMALL), ("large", LARGE)):
                walk = reads(server, data)
                next(walk)
                wal = fetch(database, "SELECT pg_current_wal_lsn() AS lsn")[0]["lsn"]
                with pytest.raises(StopIteration):
                    walk.send(None)
                written = fetch(
                    database, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1) AS d", wal
                )[0]["d"]
                figures[name] = {"wal_bytes_per_read": float(written) / READS}  # type: ignore[arg-type]
        finally:
            server.stop()
    print("\ntouch cost, postgresql alone:", json.dumps(figures, indent=2))
    assert figures["large"]["wal_bytes_per_read"] < 4 * len(json.dumps(LARGE)) / 10, figures


def wal_frames(path: Path) -> int:
    """Frames in the SQLite file's WAL (each a page written), read by a second connection."""
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    finally:
        conn.close()


def test_what_an_embedded_read_writes(tmp_path: Path) -> None:
    """Measured, not asserted against a target: the embedded file writes the slide as an
    UPDATE of the row's two time columns, which SQLite stores by writing the row's pages
    again (a row's record is rewritten whole)."""
    server = Server(QUIET, tmp_path).start()
    figures = {}
    try:
        for name, data in (("small", SMALL), ("large", LARGE)):
            walk = reads(server, data)
            next(walk)
            file = tmp_path / "statebridge.db"
            wal_frames(file)  # checkpoint what is there, so that the count starts afresh
            before = wal_frames(file)
            with pytest.raises(StopIteration):
                walk.send(None)
            time.sleep(0.3)  # the last slide's transaction
            page = sqlite3.connect(file).execute("PRAGMA page_size").fetchone()[0]
            figures[name] = {"wal_bytes_per_read": (wal_frames(file) - before) * page / READS}
    finally:
        server.stop()
    print("\ntouch cost, embedded:", json.dumps(figures, indent=2))
    assert figures["small"]["wal_bytes_per_read"] > 0  # the slide is written, as measured
