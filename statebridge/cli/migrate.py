"""The command-line layer of `statebridge migrate ...`, `export`, `backup` and `restore`.

Only typer is imported at module level: `statebridge --help` stays fast, and each command
imports what it needs when it runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from statebridge.cli.support import fail, load_settings

T = TypeVar("T")

migrate_app = typer.Typer(
    help="Move a Phase 1 installation's data and live sessions into this database.",
    no_args_is_help=True,
)

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the report as JSON instead of tables")
]
# export and backup: with '-' the file itself is on standard output, and the report on stderr
FileJsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print the report as JSON (on standard error when the file goes to standard output)",
    ),
]
NowOption = Annotated[
    str | None,
    typer.Option(
        "--now",
        help="The clock that decides which sessions are live, as an ISO time such as "
        "2026-11-29T14:40:00Z (default: the real clock); for reproducible runs",
    ),
]


def input_option(flag: str, help_text: str) -> Any:
    return typer.Option(flag, help=help_text, exists=True, dir_okay=False, readable=True)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; expected failures become one line and exit status 1."""
    from statebridge.ops.migrate.database import MigrateError
    from statebridge.ops.migrate.sources import SourceError

    try:
        return asyncio.run(coroutine)
    except (MigrateError, SourceError) as exc:
        fail(str(exc), 1)


def clock(now: str | None) -> datetime:
    from statebridge.timeutil import parse_iso, utcnow

    if now is None:
        return utcnow()
    try:
        return parse_iso(now)
    except ValueError:
        fail(f"--now: not an ISO time: {now!r}")


def summary(report: Any, as_json: bool, err: bool = False) -> None:
    """A report's one-line summary, or the report as JSON (a table's checksum as the 16 hex
    digits a backup file's end line has)."""
    from dataclasses import asdict

    from statebridge.ops.migrate.report import public

    if not as_json:
        typer.echo(report.summary(), err=err)
        return
    data = asdict(report, dict_factory=public)
    if "tables" in data:
        data["tables"] = [
            {"table": table.table, "rows": table.rows, "checksum": table.end_line()["checksum"]}
            for table in report.tables
        ]
    typer.echo(orjson_text(data), err=err)


def orjson_text(value: Any) -> str:
    import orjson

    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()


def show(report: Any, as_json: bool, render: Any) -> None:
    from rich.console import Console

    from statebridge.ops.migrate.report import to_json

    if as_json:
        typer.echo(to_json(report))
    else:
        render(report, Console())


@migrate_app.command("data")
def data(
    users: Annotated[
        Path | None, input_option("--users", "The guide's users.json: an array of users")
    ] = None,
    products: Annotated[
        Path | None, input_option("--products", "The guide's products.json: an array")
    ] = None,
    phase1_config: Annotated[
        Path | None,
        input_option("--phase1-config", "Phase 1's server-config.json (its mockData)"),
    ] = None,
    phase1_export: Annotated[
        Path | None,
        input_option("--phase1-export", "A file of Phase 1's exportData() (users, products)"),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite existing rows with the source")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Change nothing; report what would happen")
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Write nothing if any record is invalid")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Import Phase 1's users and products.

    Missing rows are inserted and existing ones left alone (ON CONFLICT DO NOTHING, as the
    transition guide does); --force overwrites them. Invalid records are reported with
    their position and skipped. Ends with a verification of every record against the
    database. Exit status 1 when the run was aborted or did not verify."""
    from statebridge.ops.migrate.data import DataOptions, DataSources, migrate_data
    from statebridge.ops.migrate.progress import Bars
    from statebridge.ops.migrate.render import render_data

    settings = load_settings()
    try:
        chosen = DataSources.from_options(users, products, phase1_config, phase1_export)
    except Exception as exc:
        fail(str(exc))
    options = DataOptions(force=force, dry_run=dry_run, strict=strict)
    with Bars() as bars:
        report = run(migrate_data(settings, chosen, options, bars))
    show(report, as_json, render_data)
    if not report.ok:
        raise typer.Exit(1)


@migrate_app.command("sessions")
def sessions(
    file: Annotated[
        Path,
        typer.Argument(
            help="The guide's phase1-sessions.json, or a file of Phase 1's exportData()",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    now: NowOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Change nothing; report what would happen")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Import Phase 1's live sessions (and, from an export, their carts).

    Expired sessions are counted and skipped; sessions whose user or products are missing
    are reported. Each live session goes into PostgreSQL (or the SQL table) and, with
    REDIS_URL, into Redis. Running it twice changes nothing the second time."""
    from statebridge.ops.migrate.progress import Bars
    from statebridge.ops.migrate.render import render_sessions
    from statebridge.ops.migrate.sessions import migrate_sessions

    settings = load_settings()
    with Bars() as bars:
        report = run(migrate_sessions(settings, file, clock(now), dry_run, bars))
    show(report, as_json, render_sessions)
    if not report.ok:
        raise typer.Exit(1)


def export(
    out: Annotated[Path, typer.Argument(help="The file to write ('-' for standard output)")],
    format_name: Annotated[
        str, typer.Option("--format", help="Only `phase1`: Phase 1's exportData() form")
    ] = "phase1",
    now: NowOption = None,
    as_json: FileJsonOption = False,
) -> None:
    """Write users, products, live sessions and carts in Phase 1's exportData() form.

    The rollback path: Phase 1's importData() takes the file as it is."""
    from statebridge.ops.archive.export import export_phase1
    from statebridge.ops.migrate.progress import Bars

    if format_name != "phase1":
        fail(f"--format: unknown format {format_name!r} (only `phase1`)")
    settings = load_settings()
    with Bars() as bars:
        report = run(export_phase1(settings, out, clock(now), bars))
    summary(report, as_json, err=str(out) == "-")


def backup(
    out: Annotated[
        Path, typer.Argument(help="The backup file (`.gz` compresses it; '-' standard output)")
    ],
    now: NowOption = None,
    as_json: FileJsonOption = False,
) -> None:
    """Write a consistent logical backup of every table: the live sessions and their carts.

    Sessions that have expired (the sweeper deletes them in time) are left out, with their
    carts."""
    from statebridge.ops.archive.backup import backup as make_backup
    from statebridge.ops.migrate.progress import Bars

    settings = load_settings()
    live_at = clock(now)
    with Bars() as bars:
        report = run(make_backup(settings, out, bars, live_at))
    summary(report, as_json, err=str(out) == "-")


def restore(
    backup_file: Annotated[
        Path,
        typer.Argument(help="A file written by `statebridge backup`", exists=True, dir_okay=False),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Replace the content of a database that is not empty")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Restore a backup into an empty database (the schema is created when missing)."""
    from statebridge.ops.archive.restore import restore as run_restore
    from statebridge.ops.migrate.progress import Bars

    settings = load_settings()
    with Bars() as bars:
        report = run(run_restore(settings, backup_file, force, bars))
    summary(report, as_json)


@migrate_app.command("sample")
def sample(
    out: Annotated[Path, typer.Option("--out", help="The folder to write into (created)")],
    users: Annotated[int, typer.Option(help="Users to generate", min=0)] = 0,
    products: Annotated[int, typer.Option(help="Products to generate", min=0)] = 0,
    phase1_config: Annotated[
        Path | None,
        typer.Option(
            "--phase1-config",
            help="Phase 1's server-config.json: also write a copy whose mockData holds the "
            "same records after its own",
        ),
    ] = None,
) -> None:
    """Write users.json and products.json of the given sizes, in Phase 1's shape (the records
    `migrate bench` generates), for `migrate data` and for benchmarks."""
    from statebridge.ops.migrate.database import MigrateError
    from statebridge.ops.migrate.sample import write_sample

    try:
        report = write_sample(out, users, products, phase1_config)
    except MigrateError as exc:
        fail(str(exc))
    for path, records, size in report.written:
        typer.echo(f"wrote {path}: {records:,} records, {size:,} bytes")


@migrate_app.command("bench")
def bench(
    users: Annotated[int, typer.Option(help="Users to generate", min=1)] = 100_000,
    products: Annotated[int, typer.Option(help="Products to generate", min=1)] = 10_000,
    sqlite: Annotated[
        bool, typer.Option("--sqlite", help="Bench the embedded SQLite path instead")
    ] = False,
    guide: Annotated[
        bool, typer.Option("--guide", help="Also time the guide's row-by-row INSERT loop")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Time `migrate data` on generated files beside a raw COPY of the same rows.

    Uses a scratch database that it creates on DATABASE_URL's server and drops after
    (the role needs CREATEDB); your own tables are not touched."""
    from statebridge.ops.migrate.bench import bench as run_bench
    from statebridge.ops.migrate.progress import Bars
    from statebridge.ops.migrate.render import render_bench

    settings = load_settings()
    with Bars() as bars:
        report = run(run_bench(settings, users, products, sqlite, guide, bars))
    show(report, as_json, render_bench)
