"""`statebridge migrate data`: Phase 1's users and products into the catalog tables.

Sources are resolved here, each table goes through `merge` (the fast path into an empty
table, or staging, checks and one merge statement), and Phase 1's requestCount follows.
All of it is one transaction: `--dry-run` and `--strict` roll it back, and a failure leaves
the database as it was. The report's `written` says whether it was committed: when it was
not, its inserted/updated counts are what the run would have written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncConnection

from statebridge.config import Settings
from statebridge.db.tables import counters
from statebridge.ops.migrate import sources
from statebridge.ops.migrate.database import (
    MigrateError,
    dry_run_target,
    insert,
    is_postgres,
    open_engine,
    require_schema,
)
from statebridge.ops.migrate.merge import (
    DataOptions,
    Kind,
    TableReport,
    check_staged,
    kinds,
    load_directly,
    stage,
    verify,
    verify_whole,
    write,
)
from statebridge.ops.migrate.progress import Bars
from statebridge.ops.migrate.report import Problems
from statebridge.ops.migrate.sources import ArraySource

__all__ = ["DataOptions", "DataReport", "DataSources", "migrate_data"]


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
    aborted: bool = False  # --strict refused: invalid records, nothing was written
    written: bool = False  # the transaction was committed
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(table.read for table in self.tables)

    @property
    def ok(self) -> bool:
        if self.aborted:
            return False
        return all(t.verification is None or t.verification.ok for t in self.tables)


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
                report.written = True
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
    loaded: list[tuple[Kind, TableReport]] = []
    user_kind, product_kind = kinds(settings)
    for kind, source in ((user_kind, data_sources.users), (product_kind, data_sources.products)):
        if source is None:
            continue
        table = TableReport(kind.name, source.describe())
        report.tables.append(table)
        if not options.dry_run and await load_directly(
            conn, kind, source, table, report.problems, bars
        ):
            loaded.append((kind, table))
            continue
        await stage(conn, kind, source, table, report.problems, bars)
        with bars.step(f"checking {kind.name}"):
            await check_staged(conn, kind, source, table, report.problems, options)
        staged.append((kind, table))
    for kind, table in loaded + staged:
        if table.read == 0:
            report.warnings.append(f"no {kind.name} found at {table.source}")
    if options.strict and report.problems.count:
        report.aborted = True
        return
    if data_sources.export:
        report.request_count = await import_request_count(conn, data_sources.export, options)
    if options.dry_run:
        return
    for kind, table in loaded:
        with bars.step(f"verifying {kind.name}"):
            table.verification = await verify_whole(conn, kind, table)
    for kind, table in staged:
        if table.inserted or table.updated:  # as counted by `plan`, in this transaction
            with bars.step(f"writing {kind.name}"):
                await write(conn, kind, options)
        with bars.step(f"verifying {kind.name}"):
            table.verification = await verify(conn, kind, table, options)


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
    from statebridge.wiring.services import connect_redis

    redis = connect_redis(settings.redis_url)
    try:
        written = await redis.set("counter:requestCount", value, nx=not options.force)
    except RedisError as exc:
        return f" (not in Redis, unreachable: {exc})"
    finally:
        await redis.aclose()
    return " (and in Redis)" if written else " (Redis already had one: kept)"
