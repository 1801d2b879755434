"""The `statebridge` command."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from statebridge import __version__
from statebridge.config import Settings
from statebridge.services import StartupError

app = typer.Typer(
    help="statebridge: the Phase 1 stateless/stateful API as a production server.\n\n"
    "With no DATABASE_URL/REDIS_URL it runs on an embedded SQLite file; with them, on "
    "PostgreSQL and Redis.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Manage the database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"statebridge: {message}", err=True)
    raise typer.Exit(code)


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except Exception as exc:  # pydantic's ValidationError, one line of it
        first = str(exc).splitlines()
        fail(f"bad configuration: {' '.join(first[:3])}")
        raise AssertionError from exc  # unreachable


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
    from statebridge.server import serve as run

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


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Upgrade the schema to REVISION (default: the newest)."""
    from statebridge.db import schema
    from statebridge.services import prepare_data_dir

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
        return
    head = schema.head_revision()
    state = "up to date" if current == head else "behind: run `statebridge db upgrade`"
    typer.echo(f"current: {current or 'none'}  head: {head}  ({state})")
