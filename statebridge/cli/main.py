"""The `statebridge` command."""

from __future__ import annotations

import asyncio
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from statebridge import __version__
from statebridge.cli import migrate as migrate_commands  # light: commands import lazily
from statebridge.cli import remote  # light: commands import lazily
from statebridge.cli.bench import bench as bench_command  # light: it imports lazily
from statebridge.cli.bench import bench_floor as bench_floor_command
from statebridge.cli.deploy import deploy_app
from statebridge.cli.faults import faults as faults_command  # light: it imports lazily
from statebridge.cli.sessions import sessions_app  # light: it imports lazily
from statebridge.cli.support import JSON_HELP, fail, load_settings, print_json
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
JsonOption = Annotated[bool, typer.Option("--json", help=JSON_HELP)]
db_app = typer.Typer(help="Manage the database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(migrate_commands.migrate_app, name="migrate")
app.add_typer(deploy_app, name="deploy")
app.add_typer(sessions_app, name="sessions")
app.command("bench")(bench_command)
app.command("bench-floor")(bench_floor_command)
app.command("faults")(faults_command)
PROG = "statebridge"
COMPLETE_VAR = "_STATEBRIDGE_COMPLETE"
if COMPLETE_VAR in os.environ:  # the shell asks for completions (see `statebridge completion`)
    from statebridge.asgi.private import typer_completion_init

    typer_completion_init()


def show_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=show_version, is_eager=True, help="Print the version and exit"
        ),
    ] = False,
) -> None:
    pass


@app.command()
def version(as_json: JsonOption = False) -> None:
    """Print the version."""
    if as_json:
        print_json({"version": __version__})
    else:
        typer.echo(__version__)


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


@app.command()
def completion(shell: Annotated[Shell, typer.Argument(help="The shell to complete in")]) -> None:
    """Print the shell completion script; nothing is installed.

    Load it in the running shell with `eval "$(statebridge completion bash)"` (zsh: the same
    with zsh; fish: `statebridge completion fish | source`), or add that line to the shell's
    startup file."""
    from statebridge.asgi.private import typer_completion_script

    typer.echo(typer_completion_script(PROG, COMPLETE_VAR, shell.value))


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


app.command("demo")(remote.demo)
app.command("check")(remote.check)
app.command("soak")(remote.soak)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument()] = "head", as_json: JsonOption = False
) -> None:
    """Upgrade the schema to REVISION (default: the newest)."""
    from statebridge.db import schema
    from statebridge.wiring.services import prepare_data_dir

    settings = load_settings()
    try:
        prepare_data_dir(settings)
        schema.upgrade(settings.schema_url, revision)
    except (StartupError, ValueError) as exc:
        fail(str(exc))
    except Exception as exc:
        fail(f"upgrade failed: {type(exc).__name__}: {exc}".splitlines()[0], 1)
    if as_json:
        print_json({"revision": revision})
    else:
        typer.echo(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument()] = "-1", as_json: JsonOption = False
) -> None:
    """Downgrade the schema to REVISION (`base` empties the database; default: one step)."""
    from statebridge.db import schema

    settings = load_settings()
    try:
        url = settings.schema_url
    except ValueError as exc:
        fail(str(exc))
    try:
        schema.downgrade(url, revision)
    except Exception as exc:
        fail(f"downgrade failed: {type(exc).__name__}: {exc}".splitlines()[0], 1)
    if as_json:
        print_json({"revision": revision})
    else:
        typer.echo(f"database at {revision}")


@db_app.command("current")
def db_current(as_json: JsonOption = False) -> None:
    """Print the schema revision of the database, and the newest one this build knows."""
    from statebridge.db import schema
    from statebridge.db.engine import create_engine

    settings = load_settings()

    async def read() -> str | None:
        engine = create_engine(settings.effective_database_url, pool_size=1, pooled=settings.pooled)
        try:
            return await schema.current_revision(engine)
        finally:
            await engine.dispose()

    try:
        current = asyncio.run(read())
    except Exception as exc:
        fail(f"cannot read the schema revision: {type(exc).__name__}: {exc}".splitlines()[0], 1)
    head = schema.head_revision()
    if as_json:
        print_json({"current": current, "head": head, "up_to_date": current == head})
        return
    state = "up to date" if current == head else "behind: run `statebridge db upgrade`"
    typer.echo(f"current: {current or 'none'}  head: {head}  ({state})")


# Phase 1 -> Phase 2 data tools (statebridge/migrate), listed after the server commands
app.command("export")(migrate_commands.export)
app.command("backup")(migrate_commands.backup)
app.command("restore")(migrate_commands.restore)
