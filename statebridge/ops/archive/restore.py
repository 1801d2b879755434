"""`statebridge restore`: a backup into an empty database, checked row for row.

The schema is created (or upgraded) first, so a freshly created database is a valid
target. A database that already holds rows is refused unless `--force`, which empties it
inside the same transaction. Every table's row count and checksum are compared with the
backup's before the transaction commits: a restore either reproduces the backup or changes
nothing. With Redis in front, stale session keys are dropped and Redis is warmed from the
restored table, and Redis's counters are restored too. Sessions of a backup made before
revision 0005 (under their ids, without sealed ids) are moved to their keys after the check,
in the same transaction, as the upgrade does (statebridge/db/sessionkeys.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import orjson
import sqlalchemy as sa
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from statebridge.config import Settings
from statebridge.db import schema
from statebridge.db.identity import database_id, renew_database_id
from statebridge.db.sessionkeys import rekey_rows, session_keys
from statebridge.db.tables import counters, metadata
from statebridge.ops.archive import live
from statebridge.ops.archive.backup import (
    FORMAT,
    TABLES,
    VERSION,
    TableSummary,
    decoder,
    table_checksum,
)
from statebridge.ops.migrate.database import (
    MigrateError,
    insert,
    is_postgres,
    load_rows,
    open_engine,
    revision_of,
)
from statebridge.ops.migrate.progress import Advance, Bars
from statebridge.ops.migrate.sources import open_binary
from statebridge.stores.sessions.base import Lifetime
from statebridge.stores.sessions.redis import DATABASE_ID, RedisSessionStore, drop_session_keys
from statebridge.stores.sessions.sql import sql_store


@dataclass
class RestoreReport:
    source: str
    tables: list[TableSummary] = field(default_factory=list)
    replaced: bool = False
    redis: str = ""
    seconds: float = 0.0
    legacy_ids: bool = False  # sessions under their ids (a backup made before revision 0005)

    def summary(self) -> str:
        parts = ", ".join(f"{t.table} {t.rows}" for t in self.tables)
        verb = "replaced the database's content with" if self.replaced else "restored"
        extra = f"; {self.redis}" if self.redis else ""
        return f"{verb} {parts} from {self.source}, verified, in {self.seconds:.2f} s{extra}"


class BackupFile:
    """The backup's lines, read one at a time."""

    def __init__(self, stream: IO[bytes], name: str) -> None:
        self.lines = iter(stream)
        self.name = name
        self.number = 0

    def next(self) -> Any:
        for raw in self.lines:
            self.number += 1
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise MigrateError(f"{self.name}:{self.number}: not JSON") from None
        raise MigrateError(f"{self.name} ends early (line {self.number}): truncated backup")

    def expect(self, key: str) -> dict[str, Any]:
        value = self.next()
        if not isinstance(value, dict) or key not in value:
            raise MigrateError(f"{self.name}:{self.number}: expected a {key!r} line")
        return value

    def rows(self, table: str, end: dict[str, Any]) -> Iterator[list[Any]]:
        """Row arrays up to the table's closing line, which is stored into `end`."""
        while True:
            value = self.next()
            if isinstance(value, list):
                yield value
                continue
            if isinstance(value, dict) and value.get("end") == table:
                end.update(value)
                return
            raise MigrateError(f"{self.name}:{self.number}: unexpected line in {table}")


def header_problem(header: Any) -> str | None:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        return "not a statebridge backup"
    if header.get("version") != VERSION:
        return f"backup format version {header.get('version')}, this statebridge reads {VERSION}"
    return None


def known_revision(revision: str) -> bool:
    from alembic.script import ScriptDirectory

    try:
        script = ScriptDirectory.from_config(schema.alembic_config(""))
        return script.get_revision(revision) is not None
    except Exception:
        return False


async def prepare_schema(engine: AsyncEngine, settings: Settings, backup_revision: str) -> None:
    """Create the schema in an empty database, or bring an older one to head."""
    if not known_revision(backup_revision):
        raise MigrateError(
            f"the backup's schema revision {backup_revision!r} is unknown to this statebridge "
            "(made by a newer version?)"
        )
    current = await revision_of(engine)
    if current is None:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
        if set(names) & set(metadata.tables):
            raise MigrateError(
                "the database has statebridge's tables but no schema revision: "
                "restore into an empty database"
            )
    if current != schema.head_revision():
        try:
            url = settings.schema_url
        except ValueError as exc:
            raise MigrateError(str(exc)) from None
        await asyncio.to_thread(schema.upgrade, url, "head")


async def occupied(conn: AsyncConnection) -> dict[str, int]:
    found = {}
    for table in TABLES:
        rows = (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()
        if rows:
            found[table.name] = int(rows)
    return found


async def restore(
    settings: Settings, path: Path, force: bool = False, bars: Bars | None = None
) -> RestoreReport:
    bars = bars or Bars(enabled=False)
    started = time.perf_counter()
    report = RestoreReport(str(path))
    redis = live.connect(settings)
    try:
        if redis is not None:  # checked first: after the commit Redis must take the sessions
            await live.require(redis)
        async with open_engine(settings, create=True) as engine:
            with open_binary(path) as stream:
                backup = BackupFile(stream, path.name)
                try:
                    header = backup.next()
                except MigrateError:
                    header = None
                problem = header_problem(header)
                if problem:
                    raise MigrateError(f"{path}: {problem}")
                await prepare_schema(engine, settings, str(header.get("revision")))
                async with engine.begin() as conn:
                    present = await occupied(conn)
                    if present and not force:
                        listing = ", ".join(f"{name} {rows}" for name, rows in present.items())
                        raise MigrateError(
                            f"the database is not empty ({listing}): restore into an empty "
                            "database, or pass --force to replace its content"
                        )
                    if present:
                        for table in reversed(TABLES):
                            await conn.execute(sa.delete(table))
                        report.replaced = True
                        await renew_database_id(conn)
                    counters_from_redis = await load_tables(conn, backup, report, bars)
                    if report.legacy_ids:
                        keys = session_keys(settings)
                        await conn.run_sync(lambda sync: rekey_rows(sync, keys))
                    if counters_from_redis and redis is None:
                        await merge_counters(conn, counters_from_redis)
            if redis is not None:
                report.redis = await refill_redis(settings, engine, redis, counters_from_redis)
    finally:
        if redis is not None:
            await redis.aclose()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


async def load_tables(
    conn: AsyncConnection, backup: BackupFile, report: RestoreReport, bars: Bars
) -> dict[str, int]:
    """Every table's rows, each checked against its closing line; Redis's counters."""
    postgres = is_postgres(conn)
    by_name = {table.name: table for table in TABLES}
    for _ in TABLES:
        start = backup.expect("table")
        table = by_name.get(start["table"])
        if table is None:
            raise MigrateError(f"{backup.name}: unknown table {start['table']!r}")
        columns: list[str] = start["columns"]
        if table.name == "sessions" and "sealed_id" not in columns:
            report.legacy_ids = True  # a backup from before revision 0005
        unknown = set(columns) - set(table.c.keys())
        if unknown:
            raise MigrateError(f"{backup.name}: {table.name} has unknown columns {unknown}")
        decoders = [decoder(table.c[name]) for name in columns]
        advance = bars.counter(f"restoring {table.name}", start.get("rows"))
        end: dict[str, Any] = {}
        rows = decoded_rows(backup, table.name, decoders, end, advance)
        await load_rows(conn, table, columns, rows)
        if table is TABLES[3] and postgres:
            await conn.execute(
                sa.text(
                    "SELECT setval(pg_get_serial_sequence('shopping_carts', 'id'), "
                    "COALESCE((SELECT max(id) FROM shopping_carts), 0) + 1, false)"
                )
            )
        found = await table_checksum(conn, table, columns)
        expected = found.end_line()["checksum"]
        if found.rows != end.get("rows") or expected != end.get("checksum"):
            raise MigrateError(
                f"{table.name}: restored {found.rows} rows (checksum {expected}), the backup "
                f"has {end.get('rows')} (checksum {end.get('checksum')}); nothing was restored"
            )
        report.tables.append(found)
    counters_line = backup.expect("redis_counters")
    backup.expect("end_of_backup")
    value = counters_line["redis_counters"]
    return {str(name): int(count) for name, count in value.items()} if value else {}


def decoded_rows(
    backup: BackupFile,
    table: str,
    decoders: list[Callable[[Any], Any]],
    end: dict[str, Any],
    advance: Advance,
) -> Iterator[list[Any]]:
    for number, values in enumerate(backup.rows(table, end), 1):
        yield [decode(value) for decode, value in zip(decoders, values, strict=True)]
        if number % 1000 == 0:
            advance(1000)


async def merge_counters(conn: AsyncConnection, values: dict[str, int]) -> None:
    """No Redis here: the servers count in the table, so it takes Redis's numbers."""
    for name, value in values.items():
        statement = insert(conn, counters).values(name=name, value=value)
        await conn.execute(
            statement.on_conflict_do_update(index_elements=[counters.c.name], set_={"value": value})
        )


async def refill_redis(
    settings: Settings, engine: AsyncEngine, redis: Redis, counter_values: dict[str, int]
) -> str:
    """Drop session keys that belong to the old content, then warm Redis from the table."""
    stale = await drop_session_keys(redis)
    await redis.set(DATABASE_ID, await database_id(engine))
    if counter_values:  # one SET each: in a cluster the counters live in different slots
        async with redis.pipeline(transaction=False) as pipe:
            for name, value in counter_values.items():
                pipe.set(f"counter:{name}", value)
            await pipe.execute()
    lifetime = Lifetime(
        timedelta(seconds=settings.session_ttl), timedelta(seconds=settings.session_max_lifetime)
    )
    refresh = timedelta(seconds=settings.session_db_refresh)
    store = RedisSessionStore(redis, sql_store(engine, lifetime, refresh), lifetime, refresh)
    warmed = await store.warm()
    return f"Redis: dropped {stale} old session keys, cached {warmed} live sessions"
