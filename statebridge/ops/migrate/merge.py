"""The table-level machinery of `migrate data`: stage, check, merge, verify.

A first migration into an empty table takes the fast path: the valid records are COPYed
straight into it under a savepoint, and the database's own unique indexes (plus one query
for emails that differ only in letter case) prove there are no duplicates; if there are,
the savepoint is rolled back and the staging path takes over. The staging path streams the
source into a temporary table (COPY on PostgreSQL), finds duplicates and taken emails with
set-based queries, counts what the merge would do (and skips it when that is nothing, as
in a re-run), merges with one `INSERT ... SELECT ... ON CONFLICT`, and verifies each row
by its fingerprint. Either way every valid record is read back from the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from statebridge.config import Settings
from statebridge.db.tables import products, users
from statebridge.ops.migrate import sources
from statebridge.ops.migrate.database import (
    create_temporary,
    insert,
    is_postgres,
    load_rows,
    stream_rows,
)
from statebridge.ops.migrate.progress import Bars
from statebridge.ops.migrate.records import (
    CENT,
    MASK,
    check_product,
    check_user,
    product_fingerprint,
    user_fingerprint,
)
from statebridge.ops.migrate.report import Problems
from statebridge.ops.migrate.sources import ArraySource
from statebridge.timeutil import utcnow

STAGE = sa.MetaData()
JSON_TEXT = sa.Text().with_variant(JSONB(), "postgresql")


def stage_table(name: str, *columns: sa.Column[Any]) -> sa.Table:
    return sa.Table(
        name,
        STAGE,
        sa.Column("pos", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("id", sa.String(50), nullable=False),
        *columns,
        sa.Column("created_at", sa.DateTime()),
        sa.Column("updated_at", sa.DateTime()),
        sa.Column("digest", sa.BigInteger, nullable=False),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",  # streamed reads keep it busy until the transaction ends
    )


stage_users = stage_table(
    "statebridge_stage_users",
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("email", sa.String(255), nullable=False),
    sa.Column("preferences", JSON_TEXT, nullable=False),
)
stage_products = stage_table(
    "statebridge_stage_products",
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("price", sa.Numeric(10, 2), nullable=False),
    sa.Column("category", sa.String(100), nullable=False),
)


def user_row_fingerprint(row: Any) -> int:
    """From (id, name, email, preferences as JSON text): decoded here, faster than the
    driver's JSON codec."""
    preferences = orjson.loads(row[3]) if row[3] else {}
    return user_fingerprint(row[0], row[1], row[2], preferences)


def product_row_fingerprint(row: Any) -> int:
    """From (id, name, price, category)."""
    return product_fingerprint(row[0], row[1], Decimal(row[2]).quantize(CENT), row[3])


@dataclass(frozen=True)
class Kind:
    """How one catalog table is staged, checked, merged and verified."""

    name: str
    target: sa.Table
    stage: sa.Table
    fields: tuple[str, ...]  # Phase 1's keys besides id: compared, and overwritten by --force
    check: Callable[[int, Any], Any]
    fingerprint: Callable[[Any], int]


def kinds(settings: Settings) -> tuple[Kind, Kind]:
    limit = settings.max_preferences_bytes
    return (
        Kind(
            "users",
            users,
            stage_users,
            ("name", "email", "preferences"),
            lambda pos, record: check_user(pos, record, limit),
            user_row_fingerprint,
        ),
        Kind(
            "products",
            products,
            stage_products,
            ("name", "price", "category"),
            check_product,
            product_row_fingerprint,
        ),
    )


@dataclass(frozen=True)
class DataOptions:
    force: bool = False
    dry_run: bool = False
    strict: bool = False


@dataclass
class Verification:
    """Do the valid source records now match the database, row for row?"""

    expected: int = 0  # valid source records
    found: int = 0  # of them, rows present in the database
    matching: int = 0  # of them, rows equal to the source in Phase 1's keys
    source_checksum: str = ""
    database_checksum: str = ""
    ok: bool = False


@dataclass
class TableReport:
    table: str
    source: str
    read: int = 0
    inserted: int = 0
    updated: int = 0
    skipped: int = 0  # already present: identical, or different and kept (no --force)
    kept_different: int = 0
    invalid: int = 0
    verification: Verification | None = None
    _source_sum: int = 0  # left out of reports: the checksum shows it


def checksum(value: int) -> str:
    return f"{value & MASK:016x}"


def checked_rows(
    kind: Kind,
    source: ArraySource,
    table: TableReport,
    problems: Problems,
    advance: Callable[[int], None],
) -> Iterator[Any]:
    """The source's valid records as staging rows; the others counted and reported."""
    check, read, total = kind.check, 0, 0
    for read, record in enumerate(sources.iter_items(source.path, source.prefix, advance), 1):
        row = check(read - 1, record)
        if type(row) is str:
            table.invalid += 1
            problems.add(source.where(read - 1), row, record_id(record))
            continue
        total += row.digest
        yield row
    table.read = read
    table._source_sum = total


async def load_directly(
    conn: AsyncConnection,
    kind: Kind,
    source: ArraySource,
    table: TableReport,
    problems: Problems,
    bars: Bars,
) -> bool:
    """The fast path for a table that is still empty (a first migration): COPY the valid
    records straight into it, under a savepoint. Any duplicate id or email makes the
    database refuse them; then the savepoint is rolled back and the caller takes the staging
    path, which reads the source again and reports every duplicate by position."""
    empty = sa.select(sa.literal(1)).select_from(kind.target).limit(1)
    if (await conn.execute(empty)).first() is not None:
        return False
    attempt = Problems()
    advance = bars.counter(f"reading {source.label}", sources.file_size(source.path), "bytes")
    columns = ["id", *kind.fields, "created_at", "updated_at"]
    rows = (row[1:7] for row in checked_rows(kind, source, table, attempt, advance))
    savepoint = await conn.begin_nested()
    try:
        await load_rows(conn, kind.target, columns, rows)
        if kind.name == "users":
            repeated = (
                sa.select(sa.func.lower(users.c.email))
                .group_by(sa.func.lower(users.c.email))
                .having(sa.func.count() > 1)
                .limit(1)
            )
            if (await conn.execute(repeated)).first() is not None:
                raise DuplicateFound
    except Exception as exc:
        if not isinstance(exc, DuplicateFound | IntegrityError) and not is_unique_violation(exc):
            raise
        await savepoint.rollback()
        table.read = table.invalid = table._source_sum = 0
        return False
    await savepoint.commit()
    for problem in attempt.items:
        problems.add(problem.where, problem.reason, problem.id)
    problems.count += attempt.count - len(attempt.items)
    table.inserted = table.read - table.invalid
    return True


class DuplicateFound(Exception):
    """Two records of the source share an email (in any letter case)."""


def is_unique_violation(exc: BaseException) -> bool:
    """asyncpg's error from a COPY (raised by the driver, not wrapped by SQLAlchemy)."""
    return type(exc).__name__ == "UniqueViolationError"


async def stage(
    conn: AsyncConnection,
    kind: Kind,
    source: ArraySource,
    table: TableReport,
    problems: Problems,
    bars: Bars,
) -> None:
    """Stream the source's valid records into the staging table; count and report the rest."""
    await create_temporary(conn, kind.stage)
    advance = bars.counter(f"reading {source.label}", sources.file_size(source.path), "bytes")
    rows = checked_rows(kind, source, table, problems, advance)
    await load_rows(conn, kind.stage, list(kind.stage.c.keys()), rows)
    if is_postgres(conn):
        await conn.execute(sa.text(f"ANALYZE {kind.stage.name}"))
    elif kind.name == "users":
        await conn.execute(
            sa.text(f"CREATE INDEX {kind.stage.name}_email ON {kind.stage.name} (lower(email))")
        )


def record_id(record: Any) -> Any:
    return record.get("id") if isinstance(record, dict) else None


async def check_staged(
    conn: AsyncConnection,
    kind: Kind,
    source: ArraySource,
    table: TableReport,
    problems: Problems,
    options: DataOptions,
) -> None:
    """Drop from staging what cannot be written (repeated ids and emails, emails that other
    users have), then count what the merge will do. Only rows that will be written can
    take an email, so that join runs only when `plan` finds some: a re-run skips it."""
    stage = kind.stage

    def duplicate(what: str) -> Callable[[Any], str]:
        return lambda row: f"duplicate {what} (first at {source.where(row.first)})"

    checks = [(repeated(stage, stage.c.id), duplicate("id"))]
    if kind.name == "users":
        checks.append((repeated(stage, sa.func.lower(stage.c.email)), duplicate("email")))
    await reject(conn, kind, source, table, problems, checks)
    await plan(conn, kind, table, options)
    if kind.name == "users" and (table.inserted or table.updated):
        taken = [(taken_emails(kind, options.force), owned_by)]
        if await reject(conn, kind, source, table, problems, taken):
            await plan(conn, kind, table, options)


def repeated(stage: sa.Table, key: sa.ColumnElement[Any]) -> sa.Select[Any]:
    """Rows whose key an earlier row already has (a hash aggregate, no sort)."""
    firsts = (
        sa.select(key.label("key"), sa.func.min(stage.c.pos).label("first"))
        .group_by(key)
        .having(sa.func.count() > 1)
        .subquery()
    )
    return (
        sa.select(stage.c.pos, stage.c.id, stage.c.digest, firsts.c.first)
        .join(firsts, firsts.c.key == key)
        .where(stage.c.pos != firsts.c.first)
    )


def written(kind: Kind, force: bool) -> sa.ColumnElement[bool]:
    """Whether the merge writes a staged row: a new id, or under --force a changed row."""
    stage = kind.stage
    current = kind.target.alias("current")
    present = sa.exists().where(current.c.id == stage.c.id)
    if force:
        present = present.where(~differs(kind, current, stage.c))
    return ~present


def taken_emails(kind: Kind, force: bool) -> sa.Select[Any]:
    """Staged users that would be written with an email another user has."""
    stage = kind.stage
    return (
        sa.select(stage.c.pos, stage.c.id, stage.c.digest, users.c.id.label("owner"))
        .join(users, sa.func.lower(users.c.email) == sa.func.lower(stage.c.email))
        .where(users.c.id != stage.c.id, written(kind, force))
    )


def owned_by(row: Any) -> str:
    return f"email already belongs to user {row.owner}"


async def reject(
    conn: AsyncConnection,
    kind: Kind,
    source: ArraySource,
    table: TableReport,
    problems: Problems,
    checks: Sequence[tuple[sa.Select[Any], Callable[[Any], str]]],
) -> int:
    """Run each check's query, report its rows (a row once, by its first reason, in source
    order), and delete them from staging. Returns how many rows were dropped."""
    stage = kind.stage
    rejected: dict[int, tuple[str, str, int]] = {}
    for query, reason in checks:
        result = await conn.stream(query)
        async for row in result:
            if row.pos not in rejected:
                rejected[row.pos] = (row.id, reason(row), row.digest)
        await result.close()
    positions = sorted(rejected)
    for pos in positions:
        row_id, why, digest = rejected[pos]
        problems.add(source.where(pos), why, row_id)
        table.invalid += 1
        table._source_sum -= digest
    for start in range(0, len(positions), 1000):
        batch = positions[start : start + 1000]
        await conn.execute(sa.delete(stage).where(stage.c.pos.in_(batch)))
    return len(positions)


def differs(kind: Kind, left: Any, right: Any) -> sa.ColumnElement[bool]:
    return sa.or_(*(left.c[name].is_distinct_from(right[name]) for name in kind.fields))


async def plan(conn: AsyncConnection, kind: Kind, table: TableReport, options: DataOptions) -> None:
    """What the merge will do, counted before it does it (all that `--dry-run` runs)."""
    stage, target = kind.stage, kind.target
    different = sa.case((sa.and_(target.c.id.is_not(None), differs(kind, target, stage.c)), 1))
    query = sa.select(
        sa.func.count(), sa.func.count(target.c.id), sa.func.count(different)
    ).select_from(stage.outerjoin(target, target.c.id == stage.c.id))
    staged, existing, changed = (await conn.execute(query)).one()
    table.inserted = staged - existing
    if options.force:
        table.updated = changed
        table.skipped = existing - changed
    else:
        table.kept_different = changed
        table.skipped = existing


async def write(conn: AsyncConnection, kind: Kind, options: DataOptions) -> None:
    """Insert the new rows (and, with --force, overwrite the changed ones). Rows already
    there as they are in the source are left out before the INSERT, by an anti-join: a
    conflict costs PostgreSQL a speculative insertion per row; ON CONFLICT stays for rows
    another writer adds meanwhile."""
    stage, target = kind.stage, kind.target
    columns = ["id", *kind.fields, "created_at", "updated_at"]
    statement = insert(conn, target).from_select(
        columns,
        sa.select(*(stage.c[name] for name in columns)).where(written(kind, options.force)),
    )
    if not options.force:
        await conn.execute(statement.on_conflict_do_nothing(index_elements=[target.c.id]))
        return
    excluded = statement.excluded
    overwrite: dict[str, Any] = {name: excluded[name] for name in kind.fields}
    overwrite["created_at"] = sa.func.coalesce(excluded.created_at, target.c.created_at)
    overwrite["updated_at"] = sa.func.coalesce(excluded.updated_at, utcnow())
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[target.c.id], set_=overwrite, where=differs(kind, target, excluded)
        )
    )


async def verify(
    conn: AsyncConnection, kind: Kind, table: TableReport, options: DataOptions
) -> Verification:
    """Read every staged record's row back and compare fingerprints, one by one."""
    stage, target = kind.stage, kind.target
    columns = [
        sa.cast(target.c[name], sa.Text).label(name) if name == "preferences" else target.c[name]
        for name in kind.fields
    ]
    query = sa.select(target.c.id, *columns, stage.c.digest).join(stage, stage.c.id == target.c.id)
    result = Verification(
        expected=(await conn.execute(sa.select(sa.func.count()).select_from(stage))).scalar_one()
    )
    database_sum = 0
    fingerprint = kind.fingerprint
    async for batch in stream_rows(conn, query):
        for row in batch:
            value = fingerprint(row)
            database_sum += value
            result.found += 1
            result.matching += value == row[-1]
    result.source_checksum = checksum(table._source_sum)
    result.database_checksum = checksum(database_sum)
    allowed = 0 if options.force else table.kept_different
    result.ok = result.found == result.expected and result.matching == result.expected - allowed
    return result


async def verify_whole(conn: AsyncConnection, kind: Kind, table: TableReport) -> Verification:
    """After the fast path the table holds exactly the source's valid records: read it all
    back and compare the count and the checksum of the fingerprints with the source's."""
    target = kind.target
    columns = [
        sa.cast(target.c[name], sa.Text).label(name) if name == "preferences" else target.c[name]
        for name in kind.fields
    ]
    result = Verification(expected=table.read - table.invalid)
    database_sum = 0
    fingerprint = kind.fingerprint
    async for batch in stream_rows(conn, sa.select(target.c.id, *columns)):
        for row in batch:
            database_sum += fingerprint(row)
            result.found += 1
    result.source_checksum = checksum(table._source_sum)
    result.database_checksum = checksum(database_sum)
    same = result.source_checksum == result.database_checksum
    result.matching = result.found if same else 0
    result.ok = same and result.found == result.expected
    return result
