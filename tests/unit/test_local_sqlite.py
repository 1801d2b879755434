"""The embedded file's own connection (statebridge/db/local.py): writes that arrive together
share a transaction, one failing write is undone alone, and a write lock held by another
process is waited for on a worker thread, never on the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection

from statebridge.db.local import LocalSqlite


def make_file(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    return str(path)


def insert(k: int, v: str | None = "x"):
    def work(conn: Connection) -> int:
        conn.execute(sa.text("INSERT INTO t (k, v) VALUES (:k, :v)"), {"k": k, "v": v})
        return k

    return work


def rows(path: str) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [k for (k,) in conn.execute("SELECT k FROM t ORDER BY k")]


def test_writes_that_arrive_together_share_a_transaction(tmp_path: Path) -> None:
    path = make_file(tmp_path / "a.db")
    local = LocalSqlite(path)
    commits = []

    async def scenario() -> list[int]:
        engine = local.engine
        sa.event.listen(engine, "commit", lambda _conn: commits.append(1))
        return list(await asyncio.gather(*(local.write(insert(k)) for k in range(100))))

    assert asyncio.run(scenario()) == list(range(100))
    assert rows(path) == list(range(100))
    assert 1 <= len(commits) <= 2  # one batch (two if the first went out alone)
    local.close()


def test_a_failing_write_is_undone_alone(tmp_path: Path) -> None:
    path = make_file(tmp_path / "b.db")
    local = LocalSqlite(path)

    async def scenario() -> list[object]:
        works = [insert(1), insert(2, None), insert(3), insert(1)]  # NOT NULL, then a duplicate
        return list(
            await asyncio.gather(*(local.write(work) for work in works), return_exceptions=True)
        )

    one, null, three, duplicate = asyncio.run(scenario())
    assert (one, three) == (1, 3)
    assert isinstance(null, sa.exc.IntegrityError) and isinstance(duplicate, sa.exc.IntegrityError)
    assert rows(path) == [1, 3]
    local.close()


def test_a_lock_held_elsewhere_is_waited_for_off_the_loop(tmp_path: Path) -> None:
    path = make_file(tmp_path / "c.db")
    local = LocalSqlite(path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's writer
    ticks: list[float] = []

    async def scenario() -> int:
        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        ticking = asyncio.create_task(ticker())
        writing = asyncio.create_task(local.write(insert(7)))
        await asyncio.sleep(0.3)
        assert not writing.done()  # waiting for the lock...
        other.execute("COMMIT")  # ...until the other writer lets go
        result = await asyncio.wait_for(writing, 10)
        ticking.cancel()
        return result

    assert asyncio.run(scenario()) == 7
    assert rows(path) == [7]
    # the loop ran while the write waited: had the write blocked it, the other writer could
    # not have committed, and the write would have failed after SQLite's busy timeout
    assert ticks
    other.close()
    local.close()


def test_reads_see_committed_writes_at_once(tmp_path: Path) -> None:
    path = make_file(tmp_path / "d.db")
    local = LocalSqlite(path)

    async def scenario() -> None:
        await local.write(insert(5))
        count = await local.read(
            lambda conn: conn.execute(sa.text("SELECT count(*) FROM t")).scalar()
        )
        assert count == 1

    asyncio.run(scenario())
    local.close()


@pytest.mark.parametrize("busy", ["database is locked", "database table is locked"])
def test_busy_is_told_from_other_errors(busy: str) -> None:
    from sqlalchemy.exc import OperationalError

    from statebridge.db.local import _is_busy

    assert _is_busy(OperationalError("x", {}, sqlite3.OperationalError(busy)))
    assert not _is_busy(OperationalError("x", {}, sqlite3.OperationalError("no such table: t")))
