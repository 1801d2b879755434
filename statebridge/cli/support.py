"""What the `statebridge` commands share: one-line failures, and the settings they run on.

Only typer is imported at module level, so `statebridge --help` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from statebridge.config import Settings


def fail(message: str, code: int = 2) -> NoReturn:
    """`statebridge: MESSAGE` on standard error, and the exit status (2: usage or setting)."""
    typer.echo(f"statebridge: {message}", err=True)
    raise typer.Exit(code)


def load_settings(**options: Any) -> Settings:
    """The settings from the environment (and `.env`), with the command-line options given
    (None: not given) on top. A bad setting ends the command with one line naming the
    variable or option, the value and what is accepted, and exit status 2.

    Python warnings are routed through the log format from here on, so a library's warning
    is a log line like any other (JSON by default) rather than free text on stderr."""
    from pydantic import ValidationError

    from statebridge.config import Settings, setting_problems
    from statebridge.observability.logs import capture_warnings

    given = {name: value for name, value in options.items() if value is not None}
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        names = {name: "--" + name.replace("_", "-") for name in given}
        fail(setting_problems(exc, names))
    except Exception as exc:  # an unreadable .env file, say
        lines = str(exc).strip().splitlines()
        fail(f"bad configuration: {type(exc).__name__}: {lines[0] if lines else ''}".strip())
    capture_warnings(settings.log_format)
    return settings


URL_HELP = (
    "The server's combined URL (APIs under /api/...) or its stateless base, e.g. Phase 1's "
    "http://localhost:3001"
)
STATEFUL_URL_HELP = "The stateful base, e.g. Phase 1's http://localhost:3002 [default: from --url]"
JSON_HELP = "Print one JSON document on standard output (notices go to standard error)"


def deprecated(old: str, new: str) -> None:
    """The one-line notice of an old spelling that still works."""
    typer.echo(f"statebridge: {old} is deprecated; use {new}", err=True)


def print_json(value: Any) -> None:
    """One JSON document on standard output."""
    import orjson

    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode())
