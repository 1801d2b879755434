"""The `statebridge` command."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from statebridge import __version__
from statebridge.cli import migrate as migrate_commands  # light: commands import lazily
from statebridge.cli.bench import bench as bench_command  # light: it imports lazily
from statebridge.cli.deploy import deploy_app
from statebridge.cli.support import fail, load_settings
from statebridge.errors import StartupError

app = typer.Typer(
    help="statebridge: the Phase 1 stateless/stateful API as a production server.\n\n"
    "With no DATABASE_URL/REDIS_URL it runs on an embedded SQLite file; with them, on "
    "PostgreSQL and Redis.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Manage the database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(migrate_commands.migrate_app, name="migrate")
app.add_typer(deploy_app, name="deploy")
app.command("bench")(bench_command)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on [env STATEBRIDGE_HOST; default 127.0.0.1]"),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Combined API port; 0 = off [env STATEBRIDGE_PORT; default 8000]"),
    ] = None,
    stateless_port: Annotated[
        int | None,
        typer.Option(
            help="Phase 1 stateless port; 0 = off [env STATEBRIDGE_STATELESS_PORT; default 3001]"
        ),
    ] = None,
    stateful_port: Annotated[
        int | None,
        typer.Option(
            help="Phase 1 stateful port; 0 = off [env STATEBRIDGE_STATEFUL_PORT; default 3002]"
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes [env STATEBRIDGE_WORKERS; default 1]")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Directory of the embedded SQLite file [env STATEBRIDGE_DATA_DIR; default ./data]"
        ),
    ] = None,
    migrate: Annotated[
        bool, typer.Option("--migrate", help="Upgrade the database schema before serving")
    ] = False,
) -> None:
    """Serve the combined API, the Phase 1 stateless server and the stateful server."""
    from statebridge.runtime.server import serve as run

    settings = load_settings(
        host=host,
        port=port,
        stateless_port=stateless_port,
        stateful_port=stateful_port,
        workers=workers,
        data_dir=data_dir,
    )
    try:
        run(settings, migrate=migrate)
    except StartupError as exc:
        fail(str(exc))


class DemoName(StrEnum):
    stateless = "stateless"
    stateful = "stateful"
    compare = "compare"


URL_HELP = "statebridge's combined URL (APIs under /api/...), or one server's own URL"


@app.command()
def demo(
    which: Annotated[DemoName, typer.Argument(help="Which Phase 1 demo script to replay")],
    url: Annotated[str, typer.Option(help=URL_HELP)] = "http://localhost:8000",
    stateless_url: Annotated[
        str | None, typer.Option(help="Stateless API base, e.g. Phase 1's http://localhost:3001")
    ] = None,
    stateful_url: Annotated[
        str | None, typer.Option(help="Stateful API base, e.g. Phase 1's http://localhost:3002")
    ] = None,
    brief: Annotated[bool, typer.Option("--brief", help="Status lines only, no bodies")] = False,
) -> None:
    """Replay Phase 1's stateless, stateful or comparison demo against any server."""
    from statebridge.cli.demo import run_demo

    raise typer.Exit(run_demo(which.value, url, stateless_url, stateful_url, brief))


@app.command()
def check(
    url: Annotated[str | None, typer.Argument(help=URL_HELP)] = None,
    stateless_url: Annotated[
        str | None, typer.Option(help="Stateless API base, e.g. Phase 1's http://localhost:3001")
    ] = None,
    stateful_url: Annotated[
        str | None, typer.Option(help="Stateful API base, e.g. Phase 1's http://localhost:3002")
    ] = None,
    ignore_p2: Annotated[
        bool, typer.Option("--ignore-p2", help="P2 rows (Phase 2 fixes) do not fail the run")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON")] = False,
) -> None:
    """Check a server against the Phase 1 contract: a pass/fail table, exit 1 on failure.

    Point it at Phase 1 (`--stateless-url http://localhost:3001 --stateful-url
    http://localhost:3002`) and at statebridge (`http://localhost:8000`).
    """
    from statebridge.cli.demo import run_check

    if url is None and not (stateless_url and stateful_url):
        url = "http://localhost:8000"
    raise typer.Exit(run_check(url, stateless_url, stateful_url, ignore_p2, as_json))


@app.command()
def soak(
    duration: Annotated[float, typer.Option(help="Seconds of load")] = 60.0,
    connections: Annotated[
        int, typer.Option(help="Concurrent connections (virtual users, in pairs)")
    ] = 200,
    target: Annotated[
        list[str] | None,
        typer.Option(help="Combined URL of a running instance (repeat); default: spawn some"),
    ] = None,
    instances: Annotated[
        int, typer.Option(help="Local instances to spawn when no --target is given")
    ] = 2,
    migrate: Annotated[
        bool, typer.Option("--migrate", help="Spawned instances migrate the database first")
    ] = False,
) -> None:
    """Soak the stateful API: sustained load on several instances, a report, exit 1 on failure.

    Spawned instances use this environment's DATABASE_URL and REDIS_URL. The run passes
    with no 5xx, no socket errors, no lost acknowledged write and flat memory.
    """
    from statebridge.ops.soak import run as run_soak

    if not target:  # the spawned instances run on this environment's settings
        load_settings()
    try:
        result = run_soak(duration, connections, target or [], instances, migrate)
    except (RuntimeError, ValueError) as exc:
        fail(str(exc))
    typer.echo(result.report())
    raise typer.Exit(0 if result.passed else 1)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Upgrade the schema to REVISION (default: the newest)."""
    from statebridge.db import schema
    from statebridge.wiring.services import prepare_data_dir

    settings = load_settings()
    try:
        prepare_data_dir(settings)
        schema.upgrade(settings.effective_database_url, revision)
    except StartupError as exc:
        fail(str(exc))
    except Exception as exc:
        fail(f"upgrade failed: {type(exc).__name__}: {exc}".splitlines()[0], 1)
    typer.echo(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument()] = "-1") -> None:
    """Downgrade the schema to REVISION (`base` empties the database; default: one step)."""
    from statebridge.db import schema

    settings = load_settings()
    try:
        schema.downgrade(settings.effective_database_url, revision)
    except Exception as exc:
        fail(f"downgrade failed: {type(exc).__name__}: {exc}".splitlines()[0], 1)
    typer.echo(f"database at {revision}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of the database, and the newest one this build knows."""
    from statebridge.db import schema
    from statebridge.db.engine import create_engine

    settings = load_settings()

    async def read() -> str | None:
        engine = create_engine(settings.effective_database_url, pool_size=1)
        try:
            return await schema.current_revision(engine)
        finally:
            await engine.dispose()

    try:
        current = asyncio.run(read())
    except Exception as exc:
        fail(f"cannot read the schema revision: {type(exc).__name__}: {exc}".splitlines()[0], 1)
    head = schema.head_revision()
    state = "up to date" if current == head else "behind: run `statebridge db upgrade`"
    typer.echo(f"current: {current or 'none'}  head: {head}  ({state})")


# Phase 1 -> Phase 2 data tools (statebridge/migrate), listed after the server commands
app.command("export")(migrate_commands.export)
app.command("backup")(migrate_commands.backup)
app.command("restore")(migrate_commands.restore)
