"""Visit counting, the workflow, the end of a session, and P2-only inputs."""

from __future__ import annotations

import asyncio

from statebridge.ops.contract import table as c
from statebridge.ops.contract.checker import Checker, Reply, need
from statebridge.ops.contract.locate import Side
from statebridge.ops.contract.table import SEED_USER as USER
from statebridge.ops.contract.table import VALIDATION


async def demonstration_rows(check: Checker, sid: str | None) -> None:
    side: Side = "stateful"
    first = await check.row(
        side,
        "stateful demonstration",
        "GET",
        "/demonstrate/stateful",
        status=200,
        message="Stateful behavior demonstration",
        data=c.STATEFUL_DEMONSTRATION,
        session=sid,
    )
    visits = first.data.get("visitCount", 0)
    await check.row(
        side,
        "visit count grows",
        "GET",
        "/demonstrate/stateful",
        status=200,
        message="Stateful behavior demonstration",
        data={**c.STATEFUL_DEMONSTRATION, "visitCount": visits + 1},
        session=sid,
        extra=lambda reply: need(
            reply.data["explanation"][1] == f"1. I remember you! This is visit #{visits + 1}",
            "explanation[1] does not say the visit number",
        ),
    )


async def workflow_rows(check: Checker, sid: str | None) -> None:
    row = check.row
    side: Side = "stateful"
    await row(
        side,
        "workflow: next before start",
        "POST",
        "/workflow/next",
        status=400,
        message="No active workflow. Start one first.",
        errors=[],
        body={},
        session=sid,
    )
    await row(
        side,
        "workflow start with a null body (axios)",
        "POST",
        "/workflow/start",
        status=200,
        message="Workflow started",
        data=c.WORKFLOW_STARTED,
        raw=b"null",
        session=sid,
        p2=True,
    )
    started = await row(
        side,
        "workflow start",
        "POST",
        "/workflow/start",
        status=200,
        message="Workflow started",
        data=c.WORKFLOW_STARTED,
        body={},
        session=sid,
    )
    workflow_id = started.data.get("workflowId", c.WORKFLOW_ID)
    for index, step in enumerate(c.WORKFLOW_STEPS[1:], start=2):
        following = c.WORKFLOW_STEPS[min(index, 3)]
        await row(
            side,
            f"workflow next: {step}",
            "POST",
            "/workflow/next",
            status=200,
            message="Workflow advanced",
            data={
                **c.WORKFLOW_ADVANCED,
                "workflowId": workflow_id,
                "currentStep": step,
                "nextStep": following,
                "progress": f"{index}/4",
                "message": f"Proceeded to step: {step}",
            },
            body={},
            session=sid,
        )
    await row(
        side,
        "workflow completed",
        "POST",
        "/workflow/next",
        status=200,
        message="Workflow completed",
        data={**c.WORKFLOW_COMPLETED, "workflowId": workflow_id},
        body={},
        session=sid,
    )


async def lifetime_rows(check: Checker, sid: str | None, first: Reply) -> None:
    row = check.row
    side: Side = "stateful"
    await row(
        side,
        "clear cart",
        "DELETE",
        "/cart",
        status=200,
        message="Cart cleared",
        data={**c.CART_CLEARED, "cart": {**c.CART_CLEARED["cart"], "sessionId": sid}},
        session=sid,
    )
    await asyncio.sleep(0.05)  # timestamps have millisecond resolution
    before = first.data.get("session", {}).get("expiresAt", "")
    await row(
        side,
        "idle expiry slides with use",
        "GET",
        "/session",
        status=200,
        message="Session information",
        data=c.SESSION,
        session=sid,
        p2=True,
        extra=lambda reply: need(
            reply.data["session"]["expiresAt"] > before,
            f"expiresAt did not move: {before} then {reply.data['session']['expiresAt']}",
        ),
    )
    await row(
        side,
        "delete session",
        "DELETE",
        "/session",
        status=200,
        message="Session terminated",
        data={**c.SESSION_DELETED, "sessionId": sid},
        session=sid,
    )
    await row(
        side,
        "deleted session is gone",
        "GET",
        "/session",
        status=401,
        message="Session not found or expired",
        session=sid,
        p2=True,
    )
    await row(
        side,
        "no cart for a deleted session",
        "GET",
        "/cart",
        status=401,
        message="Session not found or expired",
        session=sid,
        p2=True,
    )


async def p2_input_rows(check: Checker) -> None:
    """Inputs Phase 1 accepts but should not; on a throwaway session, since Phase 1 would
    corrupt the cart or session data with them."""
    side: Side = "stateful"
    made = await check.send(side, "POST", "/session", body={"userId": USER})
    sid = made.headers.get("session-id") or made.data.get("session", {}).get("id")
    for title, quantity in [
        ("a string", "2"),
        ("negative", -1),
        ("a fraction", 1.5),
        ("over 1000", 1001),
    ]:
        await check.row(
            side,
            f"add to cart: quantity {title}",
            "POST",
            "/cart/add",
            status=400,
            message=VALIDATION,
            body={"productId": "prod001", "quantity": quantity},
            session=sid,
            p2=True,
        )
    await check.row(
        side,
        "update session: data an array",
        "PUT",
        "/session",
        status=400,
        message=VALIDATION,
        errors=c.field_error("data", "Data must be an object"),
        body={"data": [1, 2]},
        session=sid,
        p2=True,
    )
    if sid:
        await check.send(side, "DELETE", "/session", session=sid)
