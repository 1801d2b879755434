"""`statebridge migrate bench`: how fast `migrate data` is, against a raw COPY of the same rows.

A program that prints numbers, not a test. It writes its own users.json and products.json,
migrates them into a scratch database (created on the PostgreSQL server and dropped after,
or a temporary SQLite file), runs the migration again (every row already present), and
times a bare binary COPY of the same rows into empty copies of the tables: the floor that
parsing, checking, merging and verifying sit on. `--guide` also times the transition
guide's row-by-row INSERT loop.
"""

from __future__ import annotations

import os
import platform
import random
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import make_url

from statebridge.config import Settings
from statebridge.db import schema
from statebridge.ops.migrate.data import DataOptions, DataSources, migrate_data
from statebridge.ops.migrate.database import MigrateError, with_changes
from statebridge.ops.migrate.progress import Bars
from statebridge.wording import counted

CATEGORIES = ("electronics", "books", "accessories", "garden", "toys", "food")


def fake_users(count: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(1)
    for number in range(count):
        yield {
            "id": f"user{number:07d}",
            "name": f"Test User {number}",
            "email": f"user{number}@example.com",
            "preferences": {
                "theme": rng.choice(("light", "dark")),
                "language": rng.choice(("en", "fr", "de")),
            },
        }


def fake_products(count: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(2)
    for number in range(count):
        yield {
            "id": f"prod{number:07d}",
            "name": f"Sample Product {number}",
            "price": rng.randrange(0, 100_000) / 100,
            "category": rng.choice(CATEGORIES),
        }


def write_array(path: Path, records: Iterator[dict[str, Any]]) -> int:
    """Write a JSON array one record at a time (the bench makes files larger than memory)."""
    count = 0
    with path.open("wb") as out:
        out.write(b"[\n")
        for record in records:
            if count:
                out.write(b",\n")
            out.write(orjson.dumps(record))
            count += 1
        out.write(b"\n]\n")
    return count


@dataclass
class Timing:
    step: str
    rows: int
    seconds: float
    # CPU of this process over the step (the migration runs in it; the database's is not
    # counted): what bounds the rate when PostgreSQL has a core of its own
    cpu_seconds: float | None = None

    @property
    def cpu_us_per_row(self) -> float | None:
        if self.cpu_seconds is None or not self.rows:
            return None
        return 1e6 * self.cpu_seconds / self.rows

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


@dataclass
class BenchReport:
    target: str
    users: int
    products: int
    input_bytes: int
    timings: list[Timing] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def plain_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_scratch(base_url: str) -> tuple[str, str]:
    """A new database on the server of `base_url`: (its name, its SQLAlchemy URL)."""
    import asyncpg  # type: ignore[import-untyped]

    name = f"statebridge_bench_{uuid.uuid4().hex[:10]}"
    try:
        conn = await asyncpg.connect(plain_dsn(base_url), timeout=10)
    except Exception as exc:
        raise MigrateError(f"cannot reach PostgreSQL for the bench: {exc}") from None
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        raise MigrateError(
            f"cannot create a scratch database (the bench needs CREATEDB): {exc}"
        ) from None
    finally:
        await conn.close()
    return name, str(make_url(base_url).set(database=name).render_as_string(hide_password=False))


async def drop_scratch(base_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(plain_dsn(base_url), timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def user_tuple(user: dict[str, Any]) -> tuple[Any, ...]:
    return (user["id"], user["name"], user["email"], orjson.dumps(user["preferences"]).decode())


def product_tuple(product: dict[str, Any]) -> tuple[Any, ...]:
    return (product["id"], product["name"], Decimal(repr(product["price"])), product["category"])


async def raw_copy(url: str, users: int, products: int) -> Timing:
    """A bare binary COPY of the same rows into empty copies of the tables (with indexes)."""
    import asyncpg

    user_rows = [user_tuple(user) for user in fake_users(users)]
    product_rows = [product_tuple(product) for product in fake_products(products)]
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        await conn.execute("CREATE TABLE copy_users (LIKE users INCLUDING ALL)")
        await conn.execute("CREATE TABLE copy_products (LIKE products INCLUDING ALL)")
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table(
                "copy_users", records=user_rows, columns=["id", "name", "email", "preferences"]
            )
            await conn.copy_records_to_table(
                "copy_products", records=product_rows, columns=["id", "name", "price", "category"]
            )
        seconds = time.perf_counter() - started
    finally:
        await conn.close()
    return Timing("raw COPY of the same rows (no parsing, no checks)", users + products, seconds)


async def guide_loop(url: str, users: int, products: int) -> Timing:
    """The transition guide's script: one INSERT ... ON CONFLICT DO NOTHING per row."""
    import asyncpg

    conn = await asyncpg.connect(plain_dsn(url))
    try:
        await conn.execute("CREATE TABLE guide_users (LIKE users INCLUDING ALL)")
        await conn.execute("CREATE TABLE guide_products (LIKE products INCLUDING ALL)")
        started = time.perf_counter()
        for user in fake_users(users):
            await conn.execute(
                "INSERT INTO guide_users (id, name, email, preferences) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (id) DO NOTHING",
                *user_tuple(user),
            )
        for product in fake_products(products):
            await conn.execute(
                "INSERT INTO guide_products (id, name, price, category) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (id) DO NOTHING",
                *product_tuple(product),
            )
        seconds = time.perf_counter() - started
    finally:
        await conn.close()
    return Timing("the guide's row-by-row INSERT loop", users + products, seconds)


async def bench(
    settings: Settings,
    users: int,
    products: int,
    sqlite: bool,
    guide: bool,
    bars: Bars | None = None,
) -> BenchReport:
    bars = bars or Bars(enabled=False)
    with tempfile.TemporaryDirectory(prefix="statebridge-bench-") as folder:
        work = Path(folder)
        users_file, products_file = work / "users.json", work / "products.json"
        with bars.step(
            f"writing {counted(users, 'user', grouped=True)} "
            f"and {counted(products, 'product', grouped=True)}"
        ):
            write_array(users_file, fake_users(users))
            write_array(products_file, fake_products(products))
        size = users_file.stat().st_size + products_file.stat().st_size
        sources = DataSources.from_options(users=users_file, products=products_file)
        if sqlite:
            url = f"sqlite:///{work / 'bench.db'}"
            report = BenchReport("sqlite", users, products, size)
            await run_migrations(settings, url, sources, report, bars)
            return report
        base = settings.database_url
        if not base or settings.embedded:
            raise MigrateError("the PostgreSQL bench needs DATABASE_URL (or --sqlite)")
        name, url = await create_scratch(settings.effective_database_url)
        report = BenchReport("postgresql", users, products, size)
        try:
            await run_migrations(settings, url, sources, report, bars)
            with bars.step("raw COPY"):
                report.timings.append(await raw_copy(url, users, products))
            if guide:
                with bars.step("the guide's loop"):
                    report.timings.append(await guide_loop(url, users, products))
        finally:
            await drop_scratch(settings.effective_database_url, name)
        return report


async def run_migrations(
    settings: Settings, url: str, sources: DataSources, report: BenchReport, bars: Bars
) -> None:
    import asyncio

    target = with_changes(settings, database_url=url, redis_url="")
    await asyncio.to_thread(schema.upgrade, target.effective_database_url, "head")
    rows = report.users + report.products
    for step in ("migrate data into empty tables", "migrate data again (every row present)"):
        with bars.step(step):
            started, cpu_started = time.perf_counter(), time.process_time()
            result = await migrate_data(target, sources, DataOptions())
            seconds = time.perf_counter() - started
            cpu_seconds = time.process_time() - cpu_started
        if not result.ok or result.problems.count:
            raise MigrateError(f"the bench's migration did not verify: {result}")
        report.timings.append(Timing(f"statebridge {step}", rows, seconds, cpu_seconds))
    report.notes.append(
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.machine()}"
    )
