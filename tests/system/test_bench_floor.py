"""`statebridge bench-floor` serves the floor on real PostgreSQL and Redis: each route does
the work it names (a committed row, a cached record), `statebridge bench` measures it, and a
clean stop removes its table and keys. Nothing here asserts a speed."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from statebridge.ops.bench.floor import PREFIX, ROWS, TABLE
from tests.support.commands import sql_rows
from tests.support.servers import clean_env
from tests.support.waiting import wait_until

pytestmark = pytest.mark.services


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def floor(services_env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "statebridge", "bench-floor", "--port", str(port)],
        env=clean_env(services_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(
        lambda: httpx.get(f"{url}/http", timeout=1).status_code == 200,
        "the floor to answer",
        tolerate=(httpx.HTTPError,),
    )
    yield url, process
    if process.poll() is None:
        process.kill()
        process.wait(10)


def test_write_commits_the_row_and_caches_the_record(
    floor: tuple[str, subprocess.Popen[str]], services_env: dict[str, str]
) -> None:
    url, _ = floor
    client = redis.Redis.from_url(services_env["REDIS_URL"])
    with httpx.Client(base_url=url, timeout=5) as session:
        for _ in range(ROWS + 5):  # every row once, five of them twice
            assert session.get("/write").status_code == 200
    rows = sql_rows(services_env, f"SELECT id, record FROM {TABLE} ORDER BY id")
    assert len(rows) == ROWS
    visits = {row: json.loads(record)["visits"] for row, record in rows}
    assert sorted(set(visits.values())) == [1, 2]
    assert sum(visits.values()) == ROWS + 5
    for row, count in visits.items():  # Redis holds what PostgreSQL committed
        assert json.loads(client.get(f"{PREFIX}{row}") or b"{}")["visits"] == count
    for path in ("/http", "/redis", "/postgres", "/save"):
        answer = httpx.get(f"{url}{path}", timeout=5)
        assert (answer.status_code, answer.json()) == (200, {"success": True, "message": "floor"})
    assert httpx.get(f"{url}/nowhere", timeout=5).status_code == 404


def test_bench_measures_every_route(
    floor: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    url, process = floor
    out = tmp_path / "floor.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "statebridge", "bench", "--url", url,
            "--endpoints", "/http,/redis,/postgres,/save,/write", "--no-stateful",
            "--duration", "1", "--warmup", "0", "--connections", "4",
            "--pid", str(process.pid), "--out", str(out),
        ],
        capture_output=True, text=True, timeout=120, env=clean_env({}),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    runs = {run["scenario"]: run for run in report["results"]}
    assert sorted(runs) == ["GET /http", "GET /postgres", "GET /redis", "GET /save", "GET /write"]
    for run in runs.values():
        assert run["responses"] > 0 and run["errors"] == 0, run
        assert run["cpu_us_per_request"] > 0, run


def test_a_clean_stop_removes_the_table_and_keys(
    floor: tuple[str, subprocess.Popen[str]], services_env: dict[str, str]
) -> None:
    _, process = floor
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0, process.stdout.read() if process.stdout else ""
    found = sql_rows(services_env, f"SELECT to_regclass('{TABLE}')")
    assert found == [(None,)]
    client = redis.Redis.from_url(services_env["REDIS_URL"])
    assert list(client.scan_iter(f"{PREFIX}*")) == []


def test_needs_postgres_and_redis(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "statebridge", "bench-floor"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=clean_env({}),
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "statebridge: bench-floor needs DATABASE_URL (PostgreSQL) and REDIS_URL"
    ]
