"""`statebridge sessions`: the operator's view of live sessions, on the configured backend
(DATABASE_URL/REDIS_URL, else the embedded file), without a running server.

Sessions are named by their hint (statebridge/stores/sessions/base.py `id_hint`), never by
their id: the id is a credential. `key` shows where an id the operator holds is kept. Only
typer is imported at module level.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from statebridge.cli.support import JSON_HELP, fail, load_settings, print_json

if TYPE_CHECKING:
    from statebridge.wiring.services import Services

sessions_app = typer.Typer(
    help="List, count and end live sessions (operators; no server needed).",
    no_args_is_help=True,
)
JsonOption = Annotated[bool, typer.Option("--json", help=JSON_HELP)]
T = TypeVar("T")


def with_services(work: Callable[[Services], Awaitable[T]]) -> T:
    """Run `work` on the stores of this environment's settings; one line on failure."""
    from statebridge.errors import StartupError
    from statebridge.wiring.services import build_services, one_line

    settings = load_settings()
    if settings.effective_session_backend == "memory":
        fail("the memory backend keeps sessions inside each serving process: none to reach here")

    async def run() -> T:
        services = await build_services(settings)
        try:
            return await work(services)
        finally:
            await services.close()

    try:
        return asyncio.run(run())
    except StartupError as exc:
        fail(str(exc))
    except Exception as exc:
        fail(f"sessions: {one_line(exc)}", 1)


def row(session: Any) -> dict[str, Any]:
    from statebridge.stores.sessions.base import id_hint
    from statebridge.timeutil import js_iso

    return {
        "hint": id_hint(session.key),
        "createdAt": js_iso(session.created_at),
        "lastAccessed": js_iso(session.last_accessed),
        "expiresAt": js_iso(session.expires_at),
        "clientAddress": session.client.address,
        "userAgent": session.client.user_agent,
    }


@sessions_app.command("list")
def list_sessions(
    user: Annotated[str, typer.Option("--user", help="The user whose live sessions to list")],
    as_json: JsonOption = False,
) -> None:
    """The live sessions of one user, oldest first, by hint."""

    async def work(services: Services) -> list[Any]:
        return await services.sessions.of_user(user)

    rows = [row(session) for session in with_services(work)]
    if as_json:
        print_json({"userId": user, "sessions": rows})
        return
    typer.echo(f"{len(rows)} live session(s) of {user}")
    for item in rows:
        typer.echo(
            f"{item['hint']}  created {item['createdAt']}  last {item['lastAccessed']}  "
            f"expires {item['expiresAt']}  {item['clientAddress'] or '-'}  "
            f"{item['userAgent'] or '-'}"
        )


@sessions_app.command("revoke")
def revoke_sessions(
    user: Annotated[
        str | None, typer.Option("--user", help="End every session of this user")
    ] = None,
    everyone: Annotated[
        bool, typer.Option("--all", help="End every session of every user")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """End the sessions of one user (--user U) or of everyone (--all), on every instance."""
    if (user is None) == (not everyone):
        fail("give exactly one of --user U and --all")

    async def work(services: Services) -> int:
        if everyone:
            return await services.sessions.revoke_all()
        assert user is not None
        found = await services.sessions.of_user(user)
        return len(await services.sessions.revoke([session.key for session in found]))

    revoked = with_services(work)
    if as_json:
        print_json({"userId": user, "all": everyone, "revoked": revoked})
    else:
        typer.echo(f"revoked {revoked} session(s)" + (f" of {user}" if user else ""))


@sessions_app.command("stats")
def session_stats(as_json: JsonOption = False) -> None:
    """The backend, its live sessions and the users they belong to."""

    async def work(services: Services) -> dict[str, Any]:
        return {
            "backend": services.settings.effective_session_backend,
            "live": await services.sessions.count(),
            "users": await services.sessions.users(),
        }

    stats = with_services(work)
    if as_json:
        print_json(stats)
    else:
        typer.echo(
            f"backend {stats['backend']}: {stats['live']} live session(s) "
            f"of {stats['users']} user(s)"
        )


@sessions_app.command("key")
def session_key(
    session_id: Annotated[str, typer.Argument(help="A session id, as a client sends it")],
    as_json: JsonOption = False,
) -> None:
    """Where the stores keep a session: its key (the HMAC of the id under
    STATEBRIDGE_SESSION_SECRET), its Redis hash and its hint. Nothing is looked up."""
    from statebridge.db.sessionkeys import session_keys
    from statebridge.stores.sessions.base import id_hint, plausible_id
    from statebridge.stores.sessions.redis import session_key as redis_key

    if not plausible_id(session_id):
        fail("a session id is a UUID (8-4-4-4-12 hex digits)")
    try:
        key = session_keys(load_settings()).key(session_id)
    except (ValueError, OSError) as exc:
        fail(str(exc))
    found = {"key": key, "redis": redis_key(key), "hint": id_hint(key)}
    if as_json:
        print_json(found)
    else:
        typer.echo(f"key {found['key']}\nredis {found['redis']}\nhint {found['hint']}")
