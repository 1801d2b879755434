"""The `statebridge faults` command (registered in statebridge/cli/main.py); imports lazily."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from statebridge.cli.support import fail


def faults(
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            help="A fault to inject (repeat the option for several): redis-kill, redis-flush, "
            "redis-stall, postgres-restart, instance-kill, instance-term [default: all]",
        ),
    ] = None,
    repeat: Annotated[int, typer.Option(min=1, help="Runs of each fault")] = 1,
    instances: Annotated[int, typer.Option(min=2, help="statebridge instances")] = 2,
    sessions: Annotated[int, typer.Option(min=1, help="Sessions adding to their carts")] = 40,
    stall: Annotated[
        float, typer.Option(min=0.5, help="Seconds a stalled Redis (SIGSTOP) stays stopped")
    ] = 10.0,
    keep: Annotated[
        bool, typer.Option(help="Keep the private stack's folder (data and instance logs)")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON instead of a table")
    ] = False,
) -> None:
    """Inject faults under load on a private stack and check that nothing acknowledged is lost.

    Starts its own PostgreSQL cluster (initdb) and Redis on loopback ports of their own, and
    INSTANCES statebridge instances on them; the machine's servers are never touched. Exit
    status 1 when any write was lost or invented, a live session got 401, or a request got a
    5xx other than the enveloped 503."""
    from statebridge.ops.faults.run import FAULTS, run
    from statebridge.ops.faults.servers import MissingServer

    chosen = fault or list(FAULTS)
    unknown = [name for name in chosen if name not in FAULTS]
    if unknown:
        fail(f"--fault {unknown[0]!r} is not accepted: one of {', '.join(FAULTS)}")

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        report = run(chosen, repeat, instances, sessions, stall, progress=progress, keep=keep)
    except MissingServer as exc:
        fail(str(exc))
    if json_output:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print_table(report)
    raise typer.Exit(0 if report.ok else 1)


def print_table(report: object) -> None:
    from rich.console import Console
    from rich.table import Table

    from statebridge.ops.faults.run import Report

    assert isinstance(report, Report)
    table = Table(
        title=f"faults under cart-add load: {report.instances} instances, "
        f"{report.sessions} sessions"
    )
    for column in ("fault", "runs", "acked", "lost", "invented", "5xx", "401 live", "recovery s"):
        table.add_column(
            column, justify="left" if column == "fault" else "right", no_wrap=column == "fault"
        )
    for row in report.rows:
        table.add_row(
            row.fault,
            str(row.runs),
            str(row.acked),
            str(row.lost),
            str(row.invented),
            str(row.server_errors),
            str(row.wrong_401),
            f"{row.max_recovery_seconds:.2f}",
        )
    Console().print(table)
    print("ok: nothing lost, nothing invented, no wrong 401, no 5xx" if report.ok else "FAILED")
