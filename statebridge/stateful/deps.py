"""Session dependencies: a route that needs a live session says so in its signature."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from statebridge.envelope import ApiError
from statebridge.services import services_of
from statebridge.sessions.store import Session, plausible_id

SESSION_HEADER = "session-id"


def session_id_of(request: Request) -> str | None:
    return request.headers.get(SESSION_HEADER) or None


async def live_session(request: Request) -> Session:
    """401 without a Session-ID, 401 for an unknown or expired one; touches the session."""
    session_id = session_id_of(request)
    if session_id is None:
        raise ApiError(401, "Valid session required")
    if not plausible_id(session_id):
        raise ApiError(401, "Session not found or expired")
    session = await services_of(request).sessions.get(session_id)
    if session is None:
        raise ApiError(401, "Session not found or expired")
    return session


async def optional_session(request: Request) -> Session | None:
    session_id = session_id_of(request)
    if session_id is None or not plausible_id(session_id):
        return None
    return await services_of(request).sessions.get(session_id)


LiveSession = Annotated[Session, Depends(live_session)]
MaybeSession = Annotated[Session | None, Depends(optional_session)]
