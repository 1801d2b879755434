"""Session management beyond Phase 1 (statebridge only, on the stateful face and under
/api/stateful): a new id for the same session."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from statebridge.api import schemas
from statebridge.api.deps import ServicesDep
from statebridge.api.stateful.deps import LiveSession, set_session_cookie
from statebridge.envelope import ApiError, success
from statebridge.timeutil import js_iso

router = APIRouter()


@router.post("/session/regenerate", responses=schemas.answers(schemas.SessionRegenerated, 401))
async def regenerate_session(session: LiveSession, services: ServicesDep) -> Response:
    """A new `Session-ID` for the caller's session: the same data, cart and lifetime; the old
    id answers 401 from now on, on every instance. Call it at login (session fixation)."""
    renewed = await services.sessions.regenerate(session.id)
    if renewed is None:
        raise ApiError(401, "Session not found or expired")
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
