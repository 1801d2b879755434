"""The stateful server's rows of `statebridge check`: one session walked from creation
to deletion, as Phase 1's stateful demo walks it.

The walk uses user001 and prod001..prod003 (Phase 1's seed data) and puts user001's
preferences back as it found them."""

from __future__ import annotations

import uuid
from typing import Any

from statebridge.ops.contract import table as c
from statebridge.ops.contract.checker import ORIGIN, Checker, Reply, listed, need
from statebridge.ops.contract.locate import Side
from statebridge.ops.contract.rows_cart import cart_rows
from statebridge.ops.contract.rows_workflow import (
    demonstration_rows,
    lifetime_rows,
    p2_input_rows,
    workflow_rows,
)
from statebridge.ops.contract.shapes import TIME
from statebridge.ops.contract.table import SEED_USER as USER
from statebridge.ops.contract.table import VALIDATION


async def stateful_rows(check: Checker) -> None:
    row = check.row
    side: Side = "stateful"
    health = await row(
        side,
        "health",
        "GET",
        "/health",
        status=200,
        message="Stateful server is healthy",
        data=c.STATEFUL_HEALTH,
    )
    check.judge(
        side,
        "health names the server (transition guide)",
        "GET /health",
        health,
        200,
        data={"server": "Stateful Server"},
        p2=True,
    )
    await row(
        side,
        "info without a session",
        "GET",
        "/info",
        status=200,
        message="Stateful server information",
        data={**c.STATEFUL_INFO, "sessionInfo": None},
    )
    await row(
        side,
        "no Session-ID header",
        "GET",
        "/session",
        status=401,
        message="Valid session required",
        p2=True,
    )
    await row(
        side,
        "made-up session id",
        "GET",
        "/cart",
        status=401,
        message="Session not found or expired",
        session=str(uuid.uuid4()),
        p2=True,
    )
    await row(
        side,
        "CORS preflight allows Session-ID",
        "OPTIONS",
        "/session",
        status=(200, 204),
        envelope=False,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,session-id,client-id",
        },
        extra=lambda reply: need(
            listed(reply.headers.get("access-control-allow-headers"), "session-id"),
            "Session-ID is not an allowed request header",
        ),
    )

    original = await original_preferences(check)

    def created(reply: Reply) -> list[str]:
        header = reply.headers.get("session-id")
        body_id = reply.data["session"]["id"]
        return need(header is not None, "no Session-ID response header") + need(
            header is None or header == body_id, "Session-ID header differs from session.id"
        )

    made = await row(
        side,
        "create session",
        "POST",
        "/session",
        status=200,
        message="Session created successfully",
        data={
            **c.SESSION_CREATED,
            "session": {**c.SESSION_CREATED["session"], "id": c.UUID4, "userId": USER},
        },
        body={"userId": USER, "data": {"theme": "light"}},
        extra=created,
    )
    sid = made.headers.get("session-id") or made.data.get("session", {}).get("id")
    await row(
        side,
        "create session: no userId",
        "POST",
        "/session",
        status=400,
        message=VALIDATION,
        errors=c.field_error("body", "Missing required fields: userId"),
        body={"data": {}},
    )
    await row(
        side,
        "create session: unknown user",
        "POST",
        "/session",
        status=404,
        message="User not found",
        errors=[],
        body={"userId": "nobody"},
    )
    first = await row(
        side,
        "read session",
        "GET",
        "/session",
        status=200,
        message="Session information",
        data={
            **c.SESSION,
            "session": {**c.SESSION["session"], "id": sid, "data": {"theme": "light"}},
        },
        session=sid,
    )
    await row(
        side,
        "update session merges data",
        "PUT",
        "/session",
        status=200,
        message="Session updated successfully",
        data={
            **c.SESSION_UPDATED,
            "session": {
                **c.SESSION_UPDATED["session"],
                "data": {"theme": "light", "lastAction": "browse"},
            },
        },
        body={"data": {"lastAction": "browse"}},
        session=sid,
    )
    await row(
        side,
        "update session: data not an object",
        "PUT",
        "/session",
        status=400,
        message=VALIDATION,
        errors=c.field_error("data", "Data must be an object"),
        body={"data": "not-an-object"},
        session=sid,
    )
    await row(
        side,
        "info with a session",
        "GET",
        "/info",
        status=200,
        message="Stateful server information",
        data={
            **c.STATEFUL_INFO,
            "sessionInfo": {**c.SESSION_INFO, "sessionId": sid, "userId": USER},
        },
        session=sid,
    )
    await cart_rows(check, sid)
    await profile_rows(check, sid, original)
    await demonstration_rows(check, sid)
    await workflow_rows(check, sid)
    await lifetime_rows(check, sid, first)
    await p2_input_rows(check)
    await row(
        side,
        "unknown route",
        "GET",
        "/no/such/endpoint",
        status=404,
        message="Endpoint not found",
        errors=[],
    )
    await row(
        side,
        "CORS exposes Session-ID",
        "GET",
        "/health",
        status=200,
        message="Stateful server is healthy",
        headers={"Origin": ORIGIN},
        p2=True,
        extra=lambda reply: need(
            listed(reply.headers.get("access-control-expose-headers"), "session-id"),
            "Session-ID is not in Access-Control-Expose-Headers (browsers cannot read it)",
        ),
    )


async def original_preferences(check: Checker) -> Any:
    """user001's preferences before the walk changes them, read from the stateless API."""
    reply = await check.send("stateless", "GET", f"/users/{USER}")
    return reply.data.get("user", {}).get("preferences")


async def profile_rows(check: Checker, sid: str | None, original: Any) -> None:
    row = check.row
    side: Side = "stateful"
    await row(
        side,
        "profile",
        "GET",
        "/profile",
        status=200,
        message="User profile",
        data={**c.PROFILE, "profile": {**c.USER, "id": USER}},
        session=sid,
    )
    wanted = {"theme": "dark", "language": "en"}
    await row(
        side,
        "update preferences",
        "PUT",
        "/profile/preferences",
        status=200,
        message="Preferences updated",
        data={
            **c.PREFERENCES_UPDATED,
            "profile": {**c.PREFERENCES_UPDATED["profile"], "id": USER, "preferences": wanted},
        },
        body={"preferences": wanted},
        session=sid,
    )
    seen = await check.send("stateless", "GET", f"/users/{USER}")
    check.judge(
        "stateless",
        "preferences outlive the session",
        f"GET /users/{USER}",
        seen,
        200,
        message="User found",
        data={**c.USER_FOUND, "user": {**c.USER, "preferences": wanted}},
    )
    await row(
        side,
        "update preferences: not an object",
        "PUT",
        "/profile/preferences",
        status=400,
        message=VALIDATION,
        errors=c.field_error("preferences", "Preferences must be an object"),
        body={"preferences": 7},
        session=sid,
    )
    await row(
        side,
        "session notes lastPreferencesUpdate",
        "GET",
        "/session",
        status=200,
        message="Session information",
        data={"session": {**c.SESSION["session"], "data": {"lastPreferencesUpdate": TIME}}},
        session=sid,
    )
    title = f"put {USER}'s preferences back"
    if not isinstance(original, dict):  # a row all the same: the table is the same every run
        unread = Reply(failure=f"{USER}'s preferences could not be read before the walk")
        check.judge(side, title, "PUT /profile/preferences", unread, 200)
        return
    await row(
        side,
        title,
        "PUT",
        "/profile/preferences",
        status=200,
        message="Preferences updated",
        body={"preferences": original},
        session=sid,
    )
