"""Session dependencies: a route that needs a live session says so in its signature."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.responses import Response

from statebridge.config import Settings
from statebridge.envelope import ApiError
from statebridge.stores.sessions.base import Session, plausible_id
from statebridge.wiring.services import services_of

SESSION_HEADER = "session-id"


def session_id_of(request: Request) -> str | None:
    """The `Session-ID` header; else, with STATEBRIDGE_SESSION_COOKIE on, the session cookie."""
    session_id = request.headers.get(SESSION_HEADER)
    if session_id:
        return session_id
    settings = services_of(request).settings
    if settings.session_cookie:
        return request.cookies.get(settings.session_cookie_name) or None
    return None


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


def usable_id(request: Request) -> str | None:
    """The session id the request carries, if it is shaped like one (nothing to look up
    otherwise)."""
    session_id = session_id_of(request)
    return session_id if session_id is not None and plausible_id(session_id) else None


async def optional_session(request: Request) -> Session | None:
    session_id = usable_id(request)
    if session_id is None:
        return None
    return await services_of(request).sessions.get(session_id)


def set_session_cookie(response: Response, settings: Settings, session_id: str | None) -> None:
    """With STATEBRIDGE_SESSION_COOKIE on: set the cookie (HttpOnly, Secure, SameSite=Lax),
    or clear it when `session_id` is None. The `Session-ID` header keeps working beside it."""
    if not settings.session_cookie:
        return
    if session_id is None:
        response.delete_cookie(
            settings.session_cookie_name,
            path="/",
            secure=settings.session_cookie_secure,
            httponly=True,
            samesite="lax",
        )
        return
    response.set_cookie(
        settings.session_cookie_name,
        session_id,
        max_age=settings.session_max_lifetime,
        path="/",
        secure=settings.session_cookie_secure,
        httponly=True,
        samesite="lax",
    )


LiveSession = Annotated[Session, Depends(live_session)]
MaybeSession = Annotated[Session | None, Depends(optional_session)]
