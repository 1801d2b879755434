"""Session management beyond Phase 1 (statebridge only, on the stateful face and under
/api/stateful): a new id for the same session, and the user's other sessions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from statebridge.api import schemas
from statebridge.api.deps import ServicesDep
from statebridge.api.stateful.deps import LiveSession, set_session_cookie
from statebridge.envelope import ApiError, success
from statebridge.observability.sessions import session_event
from statebridge.stores.sessions.base import Session, id_hint
from statebridge.timeutil import js_iso

router = APIRouter()


@router.post("/session/regenerate", responses=schemas.answers(schemas.SessionRegenerated, 401))
async def regenerate_session(session: LiveSession, services: ServicesDep) -> Response:
    """A new `Session-ID` for the caller's session: the same data, cart and lifetime; the old
    id answers 401 from now on, on every instance. Call it at login (session fixation)."""
    renewed = await services.sessions.regenerate(session.id)
    if renewed is None:
        raise ApiError(401, "Session not found or expired")
    session_event(
        "regenerated",
        hint=id_hint(renewed.key),
        previous=id_hint(session.key),
        userId=session.user_id,
    )
    data = {
        "session": {
            "id": renewed.id,
            "userId": renewed.user_id,
            "createdAt": js_iso(renewed.created_at),
            "expiresAt": js_iso(renewed.expires_at),
        },
        "previousId": session.id,
        "note": "Session id replaced. Send the new Session-ID from now on; the old one no "
        "longer works.",
    }
    response = success(data, "Session id regenerated", headers={"Session-ID": renewed.id})
    set_session_cookie(response, services.settings, renewed.id)
    return response


def sibling_view(session: Session, current: str) -> dict[str, Any]:
    return {
        "hint": id_hint(session.key),
        "current": session.key == current,
        "createdAt": js_iso(session.created_at),
        "lastAccessed": js_iso(session.last_accessed),
        "expiresAt": js_iso(session.expires_at),
        "clientAddress": session.client.address,
        "userAgent": session.client.user_agent,
    }


@router.get("/session/siblings", responses=schemas.answers(schemas.Siblings, 401))
async def list_siblings(session: LiveSession, services: ServicesDep) -> Response:
    """The live sessions of the caller's user, this one included (`current`), each by a
    short hint; never another session's id."""
    found = await services.sessions.of_user(session.user_id)
    data = {
        "userId": session.user_id,
        "sessions": [sibling_view(sibling, session.key) for sibling in found],
        "note": "Your live sessions. End the others with DELETE /session/siblings, or one of "
        "them with DELETE /session/siblings/{hint}.",
    }
    return success(data, "Sessions of this user")


async def revoke(services: Any, session: Session, keys: list[str]) -> Response:
    ended = await services.sessions.revoke(keys)
    if ended:
        services.counts.changed()
    hints = [id_hint(key) for key in ended]
    session_event("revoked", len(ended), hints=hints, userId=session.user_id, by="siblings")
    data = {
        "userId": session.user_id,
        "revoked": hints,
        "note": "Those sessions are ended on every instance; this one goes on.",
    }
    return success(data, "Other sessions ended")


@router.delete("/session/siblings", responses=schemas.answers(schemas.SiblingsRevoked, 401))
async def revoke_siblings(session: LiveSession, services: ServicesDep) -> Response:
    """Log out everywhere else: every other session of the caller's user ends."""
    found = await services.sessions.of_user(session.user_id)
    return await revoke(services, session, [s.key for s in found if s.key != session.key])


@router.delete(
    "/session/siblings/{hint}", responses=schemas.answers(schemas.SiblingsRevoked, 400, 401, 404)
)
async def revoke_sibling(hint: str, session: LiveSession, services: ServicesDep) -> Response:
    """End one other session of the caller's user, named by its hint."""
    if hint == id_hint(session.key):
        raise ApiError(400, "That is this session: DELETE /session ends it")
    found = await services.sessions.of_user(session.user_id)
    chosen = [sibling.key for sibling in found if id_hint(sibling.key) == hint]
    if not chosen:
        raise ApiError(404, "No other live session of this user has that hint")
    return await revoke(services, session, chosen)
