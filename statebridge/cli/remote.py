"""The commands that talk to a running server: `check`, `demo` and `soak` (`bench` has its own
module). They take the server the same way: `--url` (the combined URL, or the stateless
base) and `--stateful-url`; the older spellings still work, with a notice on standard error.

Only typer is imported at module level, so `statebridge --help` stays fast.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from statebridge.cli.support import (
    JSON_HELP,
    STATEFUL_URL_HELP,
    URL_HELP,
    deprecated,
    fail,
    load_settings,
    print_json,
)

DEFAULT_URL = "http://localhost:8000"

UrlOption = Annotated[str | None, typer.Option(help=f"{URL_HELP} [default: {DEFAULT_URL}]")]
StatefulUrlOption = Annotated[str | None, typer.Option(help=STATEFUL_URL_HELP)]
JsonOption = Annotated[bool, typer.Option("--json", help=JSON_HELP)]
# the old spelling of --url where it meant exactly the stateless API's base
StatelessUrlOption = Annotated[str | None, typer.Option(hidden=True)]


class DemoName(StrEnum):
    stateless = "stateless"
    stateful = "stateful"
    compare = "compare"
    scale_out = "scale-out"


def stateless_alias(stateless_url: str | None) -> None:
    if stateless_url is not None:
        deprecated("--stateless-url", "--url")


def demo(
    which: Annotated[
        DemoName, typer.Argument(help="Which Phase 1 demo script to replay, or scale-out")
    ],
    url: UrlOption = None,
    stateful_url: StatefulUrlOption = None,
    stateless_url: StatelessUrlOption = None,
    brief: Annotated[bool, typer.Option("--brief", help="Status lines only, no bodies")] = False,
    migrate: Annotated[
        bool, typer.Option("--migrate", help="scale-out: the first instance migrates the database")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Replay Phase 1's stateless, stateful or comparison demo, or show scale-out.

    `scale-out` starts two local instances itself (no --url): a session kept in one
    process's memory is lost when the next request lands on the other instance; kept in the
    shared backend (this environment's DATABASE_URL/REDIS_URL, else one embedded SQLite
    file) it is found there. Exit 0 when both happen as described.

    With --json the narration goes to standard error and standard output gets the demo's
    verdict and every request and answer."""
    from statebridge.cli.demo import run_demo, run_scale_out

    if which is DemoName.scale_out:
        if url or stateful_url or stateless_url:
            fail("scale-out starts its own instances: give it no URL")
        load_settings()  # a bad setting is refused here, once, not by both instances
        raise typer.Exit(run_scale_out(brief, migrate, as_json))
    stateless_alias(stateless_url)
    code = run_demo(
        which.value, url or DEFAULT_URL, stateless_url, stateful_url, brief, as_json=as_json
    )
    raise typer.Exit(code)


def check(
    positional_url: Annotated[str | None, typer.Argument(hidden=True, metavar="")] = None,
    url: UrlOption = None,
    stateful_url: StatefulUrlOption = None,
    stateless_url: StatelessUrlOption = None,
    ignore_p2: Annotated[
        bool, typer.Option("--ignore-p2", help="P2 rows (Phase 2 fixes) do not fail the run")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON")] = False,
) -> None:
    """Check a server against the Phase 1 contract: a pass/fail table, exit 1 on failure.

    Point it at statebridge (`--url http://localhost:8000`) and at Phase 1 (`--url
    http://localhost:3001 --stateful-url http://localhost:3002`).
    """
    from statebridge.cli.demo import run_check

    if positional_url is not None:
        deprecated("`statebridge check URL`", "`statebridge check --url URL`")
        if url is not None and url != positional_url:
            fail("give the URL once: as --url")
        url = positional_url
    stateless_alias(stateless_url)
    if url is None and not (stateless_url and stateful_url):
        url = DEFAULT_URL
    raise typer.Exit(run_check(url, stateless_url, stateful_url, ignore_p2, as_json))


def soak(
    duration: Annotated[float, typer.Option(help="Seconds of load")] = 60.0,
    connections: Annotated[
        int, typer.Option(help="Concurrent connections (virtual users, in pairs)")
    ] = 200,
    url: Annotated[
        list[str] | None,
        typer.Option(help="Combined URL of a running instance (repeat); default: spawn some"),
    ] = None,
    target: Annotated[list[str] | None, typer.Option(hidden=True)] = None,
    instances: Annotated[
        int, typer.Option(help="Local instances to spawn when no --url is given")
    ] = 2,
    migrate: Annotated[
        bool, typer.Option("--migrate", help="Spawned instances migrate the database first")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Soak the stateful API: sustained load on several instances, a report, exit 1 on failure.

    Spawned instances use this environment's DATABASE_URL and REDIS_URL. The run passes
    with no 5xx, no socket errors, no lost acknowledged write and flat memory.
    """
    from statebridge.ops.soak import run as run_soak

    if target:
        deprecated("--target", "--url")
    urls = [*(url or []), *(target or [])]
    if not urls:  # the spawned instances run on this environment's settings
        load_settings()
    try:
        result = run_soak(duration, connections, urls, instances, migrate)
    except (RuntimeError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        print_json(result.as_dict())
    else:
        typer.echo(result.report())
    raise typer.Exit(0 if result.passed else 1)
