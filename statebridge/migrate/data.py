"""`statebridge migrate data`: Phase 1's users and products into the catalog tables.

Each source is streamed into a temporary staging table (COPY on PostgreSQL), checked there
with set-based queries (duplicates, emails that belong to another user), merged with one
`INSERT ... SELECT ... ON CONFLICT` per table, and verified by reading the rows back and
comparing each one's fingerprint with the source record's. All of it is one transaction:
`--dry-run` and `--strict` roll it back, and a failure leaves the database as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from redis.exceptions import RedisError
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from statebridge.config import Settings
from statebridge.db.tables import counters, products, users
from statebridge.migrate import sources
from statebridge.migrate.database import (
    MigrateError,
    create_temporary,
    dry_run_target,
    insert,
    is_postgres,
    load_rows,
    open_engine,
    require_schema,
    stream_rows,
)
from statebridge.migrate.progress import Bars
from statebridge.migrate.records import (
    CENT,
    MASK,
    check_product,
    check_user,
    product_fingerprint,
    user_fingerprint,
)
from statebridge.migrate.report import Problems
from statebridge.migrate.sources import ArraySource
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
class DataSources:
    users: ArraySource | None = None
    products: ArraySource | None = None
    export: Path | None = None  # Phase 1's exportData() file: it also carries requestCount

    @classmethod
    def from_options(
        cls,
        users: Path | None = None,
        products: Path | None = None,
        phase1_config: Path | None = None,
        phase1_export: Path | None = None,
    ) -> DataSources:
        given = [users or products, phase1_config, phase1_export]
        if sum(1 for option in given if option) != 1:
            raise MigrateError(
                "give one source: --users/--products, --phase1-config or --phase1-export"
            )
        if phase1_config:
            return cls(
                ArraySource(phase1_config, "mockData.users.item", "mockData.users"),
                ArraySource(phase1_config, "mockData.products.item", "mockData.products"),
            )
        if phase1_export:
            return cls(
                ArraySource(phase1_export, "users.item", "users"),
                ArraySource(phase1_export, "products.item", "products"),
                phase1_export,
            )
        return cls(
            ArraySource(users, "item", users.name) if users else None,
            ArraySource(products, "item", products.name) if products else None,
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


@dataclass
class DataReport:
    database: str
    dry_run: bool
    force: bool
    strict: bool
    tables: list[TableReport] = field(default_factory=list)
    problems: Problems = field(default_factory=Problems)
    request_count: str | None = None
    warnings: list[str] = field(default_factory=list)
    aborted: bool = False
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(table.read for table in self.tables)

    @property
    def ok(self) -> bool:
        if self.aborted:
            return False
        return all(t.verification is None or t.verification.ok for t in self.tables)


def checksum(value: int) -> str:
    return f"{value & MASK:016x}"


async def migrate_data(
    settings: Settings,
    data_sources: DataSources,
    options: DataOptions,
    bars: Bars | None = None,
) -> DataReport:
    bars = bars or Bars(enabled=False)
    started = time.perf_counter()
    if options.dry_run:
        async with dry_run_target(settings) as (target, scratch):
            report = await migrate_into(target, data_sources, options, bars, create=scratch)
            if scratch:
                report.warnings.append(
                    "the embedded database does not exist yet: dry run against an empty one"
                )
    else:
        report = await migrate_into(settings, data_sources, options, bars, create=True)
    if data_sources.export and report.request_count and not options.dry_run and not report.aborted:
        report.request_count += await copy_request_count_to_redis(settings, data_sources, options)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


async def migrate_into(
    settings: Settings,
    data_sources: DataSources,
    options: DataOptions,
    bars: Bars,
    create: bool,
) -> DataReport:
    async with open_engine(settings, create=create) as engine:
        await require_schema(engine, settings, may_upgrade=create)
        report = DataReport(engine.dialect.name, options.dry_run, options.force, options.strict)
        async with engine.connect() as conn:
            transaction = await conn.begin()
            if is_postgres(conn):  # hash joins and aggregates over the staged rows, in memory
                await conn.execute(sa.text("SET LOCAL work_mem = '64MB'"))
            try:
                await run(conn, settings, data_sources, options, report, bars)
            except BaseException:
                await transaction.rollback()
                raise
            if options.dry_run or report.aborted:
                await transaction.rollback()
            else:
                await transaction.commit()
    return report


async def run(
    conn: AsyncConnection,
    settings: Settings,
    data_sources: DataSources,
    options: DataOptions,
    report: DataReport,
    bars: Bars,
) -> None:
    staged: list[tuple[Kind, TableReport]] = []
    user_kind, product_kind = kinds(settings)
    for kind, source in ((user_kind, data_sources.users), (product_kind, data_sources.products)):
        if source is None:
            continue
        table = TableReport(kind.name, source.describe())
        report.tables.append(table)
        await stage(conn, kind, source, table, report.problems, bars)
        if table.read == 0:
            report.warnings.append(f"no {kind.name} found at {source.describe()}")
        with bars.step(f"checking {kind.name}"):
            await reject_conflicts(conn, kind, source, table, report.problems, options.force)
            await plan(conn, kind, table, options)
        staged.append((kind, table))
    if options.strict and report.problems.count:
        report.aborted = True
        return
    if data_sources.export:
        report.request_count = await import_request_count(conn, data_sources.export, options)
    if options.dry_run:
        return
    for kind, table in staged:
        with bars.step(f"writing {kind.name}"):
            await write(conn, kind, options)
        with bars.step(f"verifying {kind.name}"):
            table.verification = await verify(conn, kind, table, options)


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

    def rows() -> Iterator[Any]:
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

    await load_rows(conn, kind.stage, list(kind.stage.c.keys()), rows())
    if is_postgres(conn):
        await conn.execute(sa.text(f"ANALYZE {kind.stage.name}"))
    elif kind.name == "users":
        await conn.execute(
            sa.text(f"CREATE INDEX {kind.stage.name}_email ON {kind.stage.name} (lower(email))")
        )


def record_id(record: Any) -> Any:
    return record.get("id") if isinstance(record, dict) else None


async def reject_conflicts(
    conn: AsyncConnection,
    kind: Kind,
    source: ArraySource,
    table: TableReport,
    problems: Problems,
    force: bool,
) -> None:
    """Drop from staging what cannot be written: repeated ids and emails, taken emails."""
    stage = kind.stage
    rejected: dict[int, tuple[str, str, int]] = {}

    def repeated(key: sa.ColumnElement[Any]) -> sa.Select[Any]:
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

    checks: list[tuple[sa.Select[Any], Callable[[Any], str]]] = [
        (repeated(stage.c.id), lambda row: f"duplicate id (first at {source.where(row.first)})")
    ]
    if kind.name == "users":
        email = sa.func.lower(stage.c.email)
        checks.append(
            (repeated(email), lambda row: f"duplicate email (first at {source.where(row.first)})")
        )
        # only rows that will be written can collide: new ids, and changed rows under --force
        current = users.alias("current")
        same = current.c.id == stage.c.id
        writable = (
            ~sa.exists().where(same, ~differs(kind, current, stage.c))
            if force
            else ~sa.exists().where(same)
        )
        taken = (
            sa.select(stage.c.pos, stage.c.id, stage.c.digest, users.c.id.label("owner"))
            .join(users, sa.func.lower(users.c.email) == email)
            .where(users.c.id != stage.c.id, writable)
        )
        checks.append((taken, lambda row: f"email already belongs to user {row.owner}"))
    for query, reason in checks:
        result = await conn.stream(query)
        async for row in result:
            if row.pos not in rejected:
                rejected[row.pos] = (row.id, reason(row), row.digest)
        await result.close()
    for pos in sorted(rejected):
        row_id, why, digest = rejected[pos]
        problems.add(source.where(pos), why, row_id)
        table.invalid += 1
        table._source_sum -= digest
    positions = sorted(rejected)
    for start in range(0, len(positions), 1000):
        batch = positions[start : start + 1000]
        await conn.execute(sa.delete(stage).where(stage.c.pos.in_(batch)))


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
    stage, target = kind.stage, kind.target
    columns = ["id", *kind.fields, "created_at", "updated_at"]
    statement = insert(conn, target).from_select(
        columns, sa.select(*(stage.c[name] for name in columns)).where(sa.true())
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


def read_request_count(path: Path) -> int | None:
    for value in sources.iter_items(path, "requestCount"):
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        return None
    return None


async def import_request_count(conn: AsyncConnection, path: Path, options: DataOptions) -> str:
    """Phase 1's server-wide requestCount: set when absent here, overwritten with --force."""
    value = read_request_count(path)
    if value is None:
        return "requestCount: none in the source"
    current = (
        await conn.execute(sa.select(counters.c.value).where(counters.c.name == "requestCount"))
    ).scalar_one_or_none()
    if current is not None and not options.force:
        return f"requestCount: kept {current} (source has {value}; --force overwrites)"
    if options.dry_run:
        return f"requestCount: would be set to {value}"
    statement = insert(conn, counters).values(name="requestCount", value=value)
    await conn.execute(
        statement.on_conflict_do_update(index_elements=[counters.c.name], set_={"value": value})
    )
    return f"requestCount: set to {value}"


async def copy_request_count_to_redis(
    settings: Settings, data_sources: DataSources, options: DataOptions
) -> str:
    """With Redis the servers count in `counter:requestCount`: give it the same value."""
    if not settings.redis_url or data_sources.export is None:
        return ""
    value = read_request_count(data_sources.export)
    if value is None:
        return ""
    from statebridge.services import connect_redis

    redis = connect_redis(settings.redis_url)
    try:
        written = await redis.set("counter:requestCount", value, nx=not options.force)
    except RedisError as exc:
        return f" (not in Redis, unreachable: {exc})"
    finally:
        await redis.aclose()
    return " (and in Redis)" if written else " (Redis already had one: kept)"
