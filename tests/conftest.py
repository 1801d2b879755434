"""Shared fixtures: real servers on both configurations, real PostgreSQL and Redis."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator

import pytest

from tests.recordings import ROOT
from tests.servers import Server

# What stood beside the checkout when the run began (a sibling folder such as a data
# directory). pytest's own temporary root is left out, for a checkout that sits in /tmp.
BESIDE = tuple(
    os.path.realpath(entry)
    for entry in ROOT.parent.iterdir()
    if entry != ROOT and not entry.name.startswith("pytest-of-")
)


def outside_the_repository(path: str) -> bool:
    """True for a path beside the checkout rather than in it.

    The only outside folder a test may read is an explicitly opted-in PHASE1_DIR."""
    resolved = os.path.realpath(path)
    opted_in = os.environ.get("PHASE1_DIR")
    if opted_in and resolved.startswith(os.path.realpath(opted_in)):
        return False
    return any(resolved == entry or resolved.startswith(entry + os.sep) for entry in BESIDE)


def _guard_opens(event: str, args: tuple[object, ...]) -> None:
    if event == "open" and args and isinstance(args[0], str | bytes | os.PathLike):
        path = os.fsdecode(args[0])
        if outside_the_repository(path):
            raise PermissionError(f"a test opened {path}, outside the repository")


sys.addaudithook(_guard_opens)

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_TEST_DB = int(os.environ.get("TEST_REDIS_DB", "13"))


def pg_admin_dsn() -> str:
    return PG_ADMIN_URL


def _pg_execute(sql: str) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run; dropped at the end."""
    name = f"statebridge_test_{uuid.uuid4().hex[:10]}"
    try:
        _pg_execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    _pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def new_pg_database() -> tuple[str, str]:
    """Another fresh database (name, url), for tests that need an empty one."""
    name = f"statebridge_test_{uuid.uuid4().hex[:10]}"
    _pg_execute(f'CREATE DATABASE "{name}"')
    return name, f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def drop_pg_database(name: str) -> None:
    _pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def flushed_redis_db(db: int) -> Iterator[str]:
    """The URL of Redis db `db`, flushed before and after (skips when Redis is down)."""
    import redis

    url = f"{REDIS_BASE_URL}/{db}"
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    except Exception as exc:
        pytest.skip(f"Redis is not reachable at {url}: {exc}")
    yield url
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A dedicated Redis db number, flushed before and after the run."""
    yield from flushed_redis_db(REDIS_TEST_DB)


@pytest.fixture(scope="session")
def services_env(pg_database: str, redis_url: str) -> dict[str, str]:
    return {"DATABASE_URL": pg_database, "REDIS_URL": redis_url}


@pytest.fixture(scope="session", params=["embedded", "services"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A running statebridge, once on the embedded default and once on PostgreSQL + Redis."""
    env: dict[str, str] = {}
    args: list[str] = []
    if request.param == "services":
        env = request.getfixturevalue("services_env")
        args = ["--migrate"]
    data_dir = tmp_path_factory.mktemp(f"server-{request.param}")
    running = Server(env=env, data_dir=data_dir, args=args).start()
    yield running
    running.stop()


STRICT = os.environ.get("STATEBRIDGE_TEST_STRICT") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under STATEBRIDGE_TEST_STRICT=1 (CI) a skipped test fails: a missing PostgreSQL,
    Redis, nginx or browser must not pass unnoticed. Only tests that need a Phase 1
    checkout (marker `phase1`) may skip there."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    external = item.get_closest_marker("phase1") is not None  # Phase 1 is not in CI
    if STRICT and report.skipped and not hasattr(report, "wasxfail") and not external:
        report.outcome = "failed"
        report.longrepr = f"skipped under STATEBRIDGE_TEST_STRICT=1: {report.longrepr}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("server") == "services":
            item.add_marker(pytest.mark.services)
