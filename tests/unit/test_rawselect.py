"""The fence around statebridge/db/rawselect.py: every statement the embedded stores run on
the `sqlite3` connection itself must give exactly what SQLAlchemy's `Connection.execute`
gives for the same rows. This fails when SQLAlchemy changes how it compiles, binds or
decodes them (or drops the compiler API the module reads)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from statebridge.db.local import LocalSqlite
from statebridge.db.rawselect import RawSelect
from statebridge.db.tables import metadata, products, sessions, shopping_carts, users
from statebridge.stores.carts.sqlite import ADD_LINE, CLEAR, LINES_OF, REMOVE_LINE
from statebridge.stores.sessions.sqlite import (
    DATA_BY_ID,
    DESTROY_BY_ID,
    INSERT_ONE,
    LIVE_BY_ID,
    WRITE_BY_ID,
)

NOW = datetime(2026, 12, 7, 8, 30, 15, 123456, tzinfo=UTC).replace(tzinfo=None)


def sid_of(letter: str) -> str:
    return letter * 8 + "-0000-4000-8000-" + "0" * 12


SESSIONS = [
    # id, data, max_expires_at, client address, user agent
    (sid_of("a"), {"cart": [1, 2], "name": "Zoë ✓", "n": None}, NOW + timedelta(hours=1),
     "127.0.0.1", "curl/8"),
    (sid_of("b"), {}, None, None, None),
    (sid_of("c"), None, NOW + timedelta(minutes=1), "::1", "x" * 255),
]  # fmt: skip


def make_local(path: Path) -> LocalSqlite:
    local = LocalSqlite(str(path))
    metadata.create_all(local.engine)
    with local.engine.begin() as conn:
        conn.execute(
            sa.insert(users),
            [{"id": "user001", "name": "U", "email": "u@example.com", "preferences": {},
              "created_at": NOW, "updated_at": NOW}],
        )  # fmt: skip
        conn.execute(
            sa.insert(products),
            [{"id": f"prod00{n}", "name": f"P{n}", "price": n, "category": "c"} for n in (1, 2, 3)],
        )
        for index, (sid, data, hard, address, agent) in enumerate(SESSIONS):
            conn.execute(
                sa.insert(sessions).values(
                    id=sid, user_id="user001", data=data, created_at=NOW,
                    last_accessed=NOW + timedelta(microseconds=index),
                    expires_at=NOW + timedelta(minutes=15), max_expires_at=hard,
                    version=index, client_address=address, user_agent=agent,
                )
            )  # fmt: skip
        conn.execute(
            sa.insert(shopping_carts),
            [{"session_id": SESSIONS[0][0], "product_id": f"prod00{n}", "quantity": n,
              "created_at": NOW + timedelta(seconds=n),
              "updated_at": NOW + timedelta(seconds=n, microseconds=7)}
             for n in (3, 1, 2)],
        )  # fmt: skip
    return local


def both_ways(
    tmp_path: Path, statement: Any, params: dict[str, Any]
) -> tuple[LocalSqlite, LocalSqlite, list[Any], list[Any]]:
    """A write with RETURNING on two files holding the same rows, each committed: by
    SQLAlchemy on the first, on the `sqlite3` connection on the second. The two files, the
    raw rows, and SQLAlchemy's."""
    by_orm, by_raw = make_local(tmp_path / "o.db"), make_local(tmp_path / "r.db")
    with by_orm.engine.begin() as conn:
        expected = list(conn.execute(statement, params))
    with by_raw.engine.begin() as conn:
        raw = by_raw.rows_in(conn, statement, params)
    return by_orm, by_raw, raw, expected


def by_sqlalchemy(local: LocalSqlite, statement: Any, params: dict[str, Any]) -> list[Any]:
    with local.engine.connect() as conn:
        return list(conn.execute(statement, params))


def same(raw: list[Any], expected: list[Any]) -> None:
    assert [tuple(row) for row in raw] == [tuple(row) for row in expected]
    for got, want in zip(raw, expected, strict=True):
        assert got._fields == tuple(want._fields)
        assert [type(value) for value in got] == [type(value) for value in want]


@pytest.mark.parametrize(
    "sid", [s[0] for s in SESSIONS] + ["d" * 8 + "-0000-4000-8000-" + "0" * 12]
)
@pytest.mark.parametrize("after", [NOW, NOW + timedelta(minutes=30)])
def test_the_session_read_matches_sqlalchemy(tmp_path: Path, sid: str, after: datetime) -> None:
    local = make_local(tmp_path / "s.db")
    params = {"sid": sid, "now": NOW + timedelta(seconds=30), "after": after}
    expected = by_sqlalchemy(local, LIVE_BY_ID, params)
    first = asyncio.run(local.select_first(LIVE_BY_ID, params))
    same([first] if first is not None else [], expected[:1])
    same(asyncio.run(local.select(LIVE_BY_ID, params)), expected)
    local.close()


def test_the_session_read_finds_live_rows_and_decodes_them(tmp_path: Path) -> None:
    """Not only equal to SQLAlchemy: the values are the ones written (so an equality of two
    wrong answers cannot pass)."""
    local = make_local(tmp_path / "s.db")
    sid, data, hard, address, agent = SESSIONS[0]
    params = {"sid": sid, "now": NOW, "after": NOW}
    row = asyncio.run(local.select_first(LIVE_BY_ID, params))
    assert (row.id, row.data, row.max_expires_at, row.client_address, row.user_agent) == (
        sid, data, hard, address, agent,
    )  # fmt: skip
    assert row.created_at == NOW and isinstance(row.created_at, datetime)
    gone = {"sid": sid, "now": NOW, "after": NOW + timedelta(hours=2)}
    assert asyncio.run(local.select_first(LIVE_BY_ID, gone)) is None
    local.close()


@pytest.mark.parametrize("index", [0, 1])
def test_the_cart_read_matches_sqlalchemy(tmp_path: Path, index: int) -> None:
    local = make_local(tmp_path / "c.db")
    params = {"sid": SESSIONS[index][0]}
    expected = by_sqlalchemy(local, LINES_OF, params)
    raw = asyncio.run(local.select(LINES_OF, params))
    same(raw, expected)
    if index == 0:
        assert [row.product_id for row in raw] == ["prod003", "prod001", "prod002"]
        assert raw[0].updated_at == NOW + timedelta(seconds=3, microseconds=7)
    local.close()


@pytest.mark.parametrize("index", [0, 2])
def test_the_session_write_matches_sqlalchemy(tmp_path: Path, index: int) -> None:
    """Inside a write's transaction (rolled back after each way, so both see the same rows):
    the data read, then the UPDATE ... RETURNING that writes it back."""
    local = make_local(tmp_path / "w.db")
    sid = SESSIONS[index][0]
    new_data = {"k": "v", "ü": [1, {"x": None}]}
    params = {"sid": sid, "now": NOW + timedelta(seconds=30), "after": NOW,
              "slid": NOW + timedelta(minutes=16), "new_data": new_data}  # fmt: skip
    with local.engine.connect() as conn:
        for statement in (DATA_BY_ID, WRITE_BY_ID):
            with conn.begin() as transaction:
                expected = list(conn.execute(statement, params))
                transaction.rollback()
            with conn.begin() as transaction:
                raw = local.rows_in(conn, statement, params)
                transaction.rollback()
            same(raw, expected)
        with conn.begin() as transaction:
            written = local.first_in(conn, WRITE_BY_ID, params)
            transaction.commit()
    assert written.data == params["new_data"] and written.version == index + 1
    hard = SESSIONS[index][2] or params["slid"]
    assert (
        written.expires_at == min(params["slid"], hard) and written.last_accessed == params["now"]
    )
    reread = by_sqlalchemy(local, LIVE_BY_ID, {**params, "after": NOW})
    assert reread[0].data == params["new_data"]  # committed as SQLAlchemy reads it
    local.close()


def stored(local: LocalSqlite, sid: str) -> tuple[Any, ...]:
    """The row as the file holds it (text, as sqlite3 gives it back untyped)."""
    return tuple(local.raw.execute("SELECT * FROM sessions WHERE id = ?", (sid,)).fetchone())


def test_the_session_insert_stores_what_sqlalchemy_stores(tmp_path: Path) -> None:
    params = {"sid": sid_of("e"), "user_id": "user001", "new_data": {"a": "ü", "b": [1.5]},
              "created_at": NOW, "expires": NOW + timedelta(minutes=15),
              "hard": NOW + timedelta(hours=1), "address": "::1", "agent": None,
              "sealed": "c2VhbGVk"}  # fmt: skip
    by_orm, by_raw = make_local(tmp_path / "o.db"), make_local(tmp_path / "r.db")
    with by_orm.engine.begin() as conn:
        conn.execute(INSERT_ONE, params)
    with by_raw.engine.begin() as conn:
        assert by_raw.rows_in(conn, INSERT_ONE, params) == []
    assert stored(by_raw, params["sid"]) == stored(by_orm, params["sid"])
    assert stored(by_raw, params["sid"])[1] == "user001"
    read = by_sqlalchemy(by_raw, LIVE_BY_ID, {"sid": params["sid"], "now": NOW, "after": NOW})
    assert read[0].data == params["new_data"] and read[0].last_accessed == NOW
    by_orm.close()
    by_raw.close()


def cart_file(local: LocalSqlite) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in local.raw.execute("SELECT * FROM shopping_carts ORDER BY id")]


def test_the_cart_writes_store_what_sqlalchemy_stores(tmp_path: Path) -> None:
    sid = SESSIONS[0][0]
    later = NOW + timedelta(minutes=1, microseconds=11)
    steps = [
        (ADD_LINE, {"sid": sid, "pid": "prod001", "qty": 4, "now": later}),  # adds to a line
        (ADD_LINE, {"sid": SESSIONS[1][0], "pid": "prod002", "qty": 1, "now": later}),  # new
        (REMOVE_LINE, {"sid": sid, "pid": "prod003"}),
        (CLEAR, {"sid": SESSIONS[1][0]}),
    ]
    by_orm, by_raw = make_local(tmp_path / "o.db"), make_local(tmp_path / "r.db")
    for statement, params in steps:
        with by_orm.engine.begin() as conn:
            conn.execute(statement, params)
        with by_raw.engine.begin() as conn:
            by_raw.rows_in(conn, statement, params)
        assert cart_file(by_raw) == cart_file(by_orm)
    lines = by_sqlalchemy(by_raw, LINES_OF, {"sid": sid})
    assert [(row.product_id, row.quantity) for row in lines] == [("prod001", 5), ("prod002", 2)]
    assert lines[0].updated_at == later
    with by_raw.engine.begin() as conn, pytest.raises(sqlite3.IntegrityError):
        by_raw.rows_in(conn, ADD_LINE, {"sid": sid_of("f"), "pid": "prod001", "qty": 1, "now": NOW})
    by_orm.close()
    by_raw.close()


@pytest.mark.parametrize("after", [NOW, NOW + timedelta(hours=2)])
def test_the_session_delete_matches_sqlalchemy(tmp_path: Path, after: datetime) -> None:
    """A live session is deleted with its cart lines (the foreign key's cascade, on the
    sqlite3 connection too); an ended one is left alone, and says so."""
    sid = SESSIONS[0][0]
    params = {"sid": sid, "now": NOW, "after": after}
    by_orm, by_raw, raw, expected = both_ways(tmp_path, DESTROY_BY_ID, params)
    same(raw, expected)
    assert [row.id for row in raw] == ([sid] if after == NOW else [])
    assert cart_file(by_raw) == cart_file(by_orm)
    assert len(cart_file(by_raw)) == (0 if after == NOW else 3)
    by_orm.close()
    by_raw.close()


def test_another_dialect_is_refused() -> None:
    from sqlalchemy.dialects import postgresql

    with pytest.raises(TypeError, match="sqlite3 only"):
        RawSelect(LIVE_BY_ID, postgresql.asyncpg.dialect())


def test_a_locked_file_is_waited_for_on_a_worker_thread(tmp_path: Path) -> None:
    """Another connection holding the file in exclusive mode: the read does not fail, it is
    answered once the lock is let go, and the event loop turns meanwhile."""
    import threading

    local = make_local(tmp_path / "l.db")
    params = {"sid": SESSIONS[0][0]}
    expected = by_sqlalchemy(local, LINES_OF, params)
    local.close()
    other = sqlite3.connect(tmp_path / "l.db", check_same_thread=False, isolation_level=None)
    other.execute("PRAGMA locking_mode=EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(0.5, lambda: (other.execute("COMMIT"), other.close()))

    async def scenario() -> tuple[list[Any], int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        release.start()
        rows = await local.select(LINES_OF, params)
        ticker.cancel()
        return rows, ticks

    rows, ticks = asyncio.run(scenario())
    release.join()
    same(rows, expected)
    assert ticks >= 10  # the loop went on turning while the read waited
    local.close()


def test_the_catalog_reads_match_sqlalchemy(tmp_path: Path) -> None:
    from statebridge.catalog.sqlite import ALL_PRODUCTS, ALL_USERS, PRODUCT_BY_ID, USER_BY_ID

    local = make_local(tmp_path / "k.db")
    for statement, params in [
        (ALL_USERS, {}),
        (ALL_PRODUCTS, {}),
        (USER_BY_ID, {"uid": "user001"}),
        (USER_BY_ID, {"uid": "nobody"}),
        (PRODUCT_BY_ID, {"pid": "prod002"}),
        (PRODUCT_BY_ID, {"pid": "prod009"}),
    ]:
        same(asyncio.run(local.select(statement, params)), by_sqlalchemy(local, statement, params))
    products_read = asyncio.run(local.select(ALL_PRODUCTS, {}))
    assert [(row.id, row.price) for row in products_read] == [
        ("prod001", 1), ("prod002", 2), ("prod003", 3),
    ]  # fmt: skip
    user = asyncio.run(local.select_first(USER_BY_ID, {"uid": "user001"}))
    assert (user.email, user.preferences, user.created_at) == ("u@example.com", {}, NOW)
    local.close()


def test_the_preferences_write_stores_what_sqlalchemy_stores(tmp_path: Path) -> None:
    from statebridge.catalog.sqlite import SET_PREFERENCES

    params = {"uid": "user001", "prefs": {"theme": "dark", "ü": [1, None]}, "now": NOW}
    by_orm, by_raw, raw, expected = both_ways(tmp_path, SET_PREFERENCES, params)
    same(raw, expected)
    assert raw[0].preferences == params["prefs"] and raw[0].updated_at == NOW

    def user_row(local: LocalSqlite) -> tuple[Any, ...]:
        return tuple(local.raw.execute("SELECT * FROM users").fetchone())

    assert user_row(by_raw) == user_row(by_orm)
    with by_raw.engine.begin() as conn:
        assert by_raw.rows_in(conn, SET_PREFERENCES, {**params, "uid": "nobody"}) == []
    by_orm.close()
    by_raw.close()


def test_the_expiry_slides_store_what_sqlalchemy_stores(tmp_path: Path) -> None:
    """The batched sliding-expiry write (one executemany): a later expiry is written, an
    earlier one never takes back a later one, an unknown id changes nothing."""
    from statebridge.stores.sessions.sql import REFRESH

    later = NOW + timedelta(minutes=20, microseconds=3)
    params = [
        {"sid": SESSIONS[0][0], "last": NOW + timedelta(minutes=5), "expires": later},
        {"sid": SESSIONS[1][0], "last": NOW, "expires": NOW},  # earlier: left alone
        {"sid": sid_of("z"), "last": NOW, "expires": later},
    ]
    by_orm, by_raw = make_local(tmp_path / "o.db"), make_local(tmp_path / "r.db")
    with by_orm.engine.begin() as conn:
        conn.execute(REFRESH, params)
    with by_raw.engine.begin() as conn:
        by_raw.each_in(conn, REFRESH, params)
    for sid in (SESSIONS[0][0], SESSIONS[1][0]):
        assert stored(by_raw, sid) == stored(by_orm, sid)
    read = by_sqlalchemy(by_raw, LIVE_BY_ID, {"sid": SESSIONS[0][0], "now": NOW, "after": NOW})
    assert read[0].expires_at == later and read[0].last_accessed == NOW + timedelta(minutes=5)
    unchanged = by_sqlalchemy(by_raw, LIVE_BY_ID, {"sid": SESSIONS[1][0], "now": NOW, "after": NOW})
    assert unchanged[0].expires_at == NOW + timedelta(minutes=15)
    by_orm.close()
    by_raw.close()
