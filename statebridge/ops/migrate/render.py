"""Reports as rich tables, for a person at a terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from statebridge.ops.migrate.bench import BenchReport
from statebridge.ops.migrate.data import DataReport
from statebridge.ops.migrate.report import counts_table, print_problems
from statebridge.ops.migrate.sessions import SessionReport
from statebridge.wording import counted


def data_title(report: DataReport) -> str:
    if report.dry_run:
        return "Dry run: nothing was written"
    if report.aborted:
        return "Refused (--strict): nothing was written"
    return "Migrated"


def render_data(report: DataReport, console: Console) -> None:
    title = data_title(report)
    verbs = ["inserted", "updated"] if report.written else ["would insert", "would update"]
    rows = [
        [t.table, t.source, t.read, t.inserted, t.updated, t.skipped, t.invalid]
        for t in report.tables
    ]
    columns = ["table", "source", "read", *verbs, "skipped", "invalid"]
    console.print(counts_table(f"{title} ({report.database})", columns, rows))
    fate = "" if report.aborted else " (skipped)"
    print_problems(console, report.problems, f"Invalid records{fate}")
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    for table in report.tables:
        if table.kept_different:
            existing = counted(table.kept_different, "existing row", grouped=True)
            differ, were = ("differs", "was") if table.kept_different == 1 else ("differ", "were")
            console.print(
                f"{table.table}: {existing} {differ} from the source and {were} kept "
                "(--force overwrites them)"
            )
    if report.request_count:
        console.print(report.request_count)
    if report.aborted:
        invalid = counted(report.problems.count, "invalid record", grouped=True)
        console.print(f"[red]--strict: {invalid}, nothing was written[/]")
        return
    verified = [t for t in report.tables if t.verification is not None]
    if verified:
        check = counts_table(
            "Verification: the source's valid records against the database",
            ["table", "expected", "found", "matching", "source checksum", "database", "ok"],
            [
                [
                    t.table,
                    v.expected,
                    v.found,
                    v.matching,
                    v.source_checksum,
                    v.database_checksum,
                    "yes" if v.ok else "NO",
                ]
                for t in verified
                if (v := t.verification) is not None
            ],
        )
        console.print(check)
    rate = f" ({report.rows / report.seconds:,.0f} records/s)" if report.seconds >= 1 else ""
    console.print(f"{counted(report.rows, 'record', grouped=True)} in {report.seconds:.2f} s{rate}")


def render_bench(report: BenchReport, console: Console) -> None:
    megabytes = report.input_bytes / 1e6
    title = (
        f"{counted(report.users, 'user', grouped=True)} + "
        f"{counted(report.products, 'product', grouped=True)} "
        f"({megabytes:.1f} MB of JSON) on {report.target}"
    )
    rows = [
        [
            t.step,
            t.rows,
            f"{t.seconds:.2f}",
            f"{t.rate:,.0f}",
            "-" if t.cpu_us_per_row is None else f"{t.cpu_us_per_row:.1f}",
        ]
        for t in report.timings
    ]
    headers = ["step", "rows", "seconds", "rows/s", "CPU µs/row (this process)"]
    console.print(counts_table(title, headers, rows))
    for note in report.notes:
        console.print(note)


def seconds_text(value: float | None) -> str:
    if value is None:
        return "-"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def render_sessions(report: SessionReport, console: Console) -> None:
    verb = "would import" if report.dry_run else "imported"
    title = f"Sessions from {report.form} at {report.now} into {report.redis}"
    rows: list[list[Any]] = [
        ["sessions read", report.read],
        [f"live, {verb}", report.imported],
        ["already present (left alone)", report.already_present],
        ["expired (skipped)", report.expired],
        ["user missing (skipped)", report.missing_user],
        ["invalid (skipped)", report.invalid],
        [
            "remaining lifetime of the imported",
            f"{seconds_text(report.shortest_ttl_seconds)} .. "
            f"{seconds_text(report.longest_ttl_seconds)}",
        ],
    ]
    if report.form == "exportData()":
        rows += [
            ["carts read", report.carts_read],
            ["carts of sessions not imported by this run", report.carts_skipped],
            [f"cart items {verb}", report.cart_items_imported],
            ["cart items refused", report.cart_items_refused],
            ["cart items whose Phase 1 price differs from the catalog", report.cart_items_repriced],
        ]
    if report.cached_in_redis:
        rows.append(["sessions written to Redis", report.cached_in_redis])
    console.print(counts_table(title, ["", "count"], rows))
    print_problems(console, report.problems, "Not imported")
    console.print(f"done in {report.seconds:.2f} s")
