"""The stateful server (Phase 1 port 3002): sessions, carts, profile, workflow."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from statebridge.api import schemas
from statebridge.api.deps import Body, ServicesDep, json_object
from statebridge.api.stateful.deps import (
    LiveSession,
    MaybeSession,
    live_session,
    set_session_cookie,
    usable_id,
)
from statebridge.api.stateful.texts import WORKFLOW_STEPS, stateful_explanation
from statebridge.api.stateful.workflow import advance, start
from statebridge.asgi.body import require_fields
from statebridge.envelope import ApiError, success, validation_error
from statebridge.observability import process
from statebridge.observability.sessions import session_event
from statebridge.stores.carts.base import CartItem, SessionGone, cart_total
from statebridge.stores.sessions.base import Client, Session, UnknownUser, id_hint
from statebridge.timeutil import age_text, js_iso, js_now, utcnow

router = APIRouter()
MAX_QUANTITY = 1000


def size_of(value: Any) -> int:
    return len(orjson.dumps(value))


def check_size(value: Any, limit: int, what: str) -> None:
    if size_of(value) > limit:
        raise ApiError(413, f"{what} too large", [{"field": what, "message": f"limit {limit}"}])


def cart_view(session: Session, items: list[CartItem], created: bool = False) -> dict[str, Any]:
    updated = max((item.updated_at for item in items), default=None)
    view: dict[str, Any] = {
        "sessionId": session.id,
        "items": [item.view() for item in items],
        "total": cart_total(items),
        "itemCount": len(items),
    }
    if created:
        first = min((item.added_at for item in items), default=session.created_at)
        view["createdAt"] = js_iso(first)
    view["updatedAt"] = js_iso(updated) if updated else js_iso(session.created_at)
    return view


@router.get("/health", responses=schemas.answers(schemas.StatefulHealth))
async def health(services: ServicesDep) -> Response:
    active_sessions, active_carts = await services.counts.read()
    data = {
        "status": "healthy",
        "service": "Stateful Server",
        "server": "Stateful Server",
        "timestamp": js_now(),
        "uptime": process.uptime(),
        "memory": process.memory(),
        "activeSessions": active_sessions,
        "activeCarts": active_carts,
        "serverType": "stateful",
        "note": "I maintain client state across requests",
    }
    return success(data, "Stateful server is healthy")


@router.get("/info", responses=schemas.answers(schemas.StatefulInfo))
async def info(services: ServicesDep, session: MaybeSession) -> Response:
    now = utcnow()
    session_info = None
    if session is not None:
        session_info = {
            "sessionId": session.id,
            "userId": session.user_id,
            "sessionAge": age_text(session.created_at, now),
        }
    active_sessions, active_carts = await services.counts.read()
    data = {
        "server": "Stateful Mock Server v2.0",
        "timestamp": js_iso(now),
        "sessionInfo": session_info,
        "serverStats": {
            "activeSessions": active_sessions,
            "activeCarts": active_carts,
        },
        "message": "I remember you and maintain your state across requests!",
        "note": "This is a stateful server - I track sessions, carts, and user preferences.",
    }
    return success(data, "Stateful server information")


@router.post(
    "/session",
    openapi_extra=schemas.body(schemas.CreateSession),
    responses=schemas.answers(schemas.SessionCreated, 400, 404, 413),
)
async def create_session(request: Request, body: Body, services: ServicesDep) -> Response:
    require_fields(body, "userId")
    user_id = body["userId"]
    data = body.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise validation_error("data", "Data must be an object")
    check_size(data, services.settings.max_session_data_bytes, "data")
    user = await services.catalog.get_user(user_id) if isinstance(user_id, str) else None
    if user is None:
        raise ApiError(404, "User not found")
    client = Client.of(
        request.client.host if request.client else None, request.headers.get("user-agent")
    )
    try:
        session = await services.sessions.create(user_id, data, client)
    except UnknownUser:  # deleted since the catalog was read
        raise ApiError(404, "User not found") from None
    services.counts.changed()
    session_event("created", hint=id_hint(session.key), userId=user_id)
    payload = {
        "session": {
            "id": session.id,
            "userId": session.user_id,
            "createdAt": js_iso(session.created_at),
            "expiresAt": js_iso(session.expires_at),
        },
        "user": {"id": user["id"], "name": user["name"], "email": user["email"]},
        "note": "Session created. Include Session-ID header in subsequent requests to maintain "
        "state.",
    }
    response = success(payload, "Session created successfully", headers={"Session-ID": session.id})
    set_session_cookie(response, services.settings, session.id)
    return response


@router.get("/session", responses=schemas.answers(schemas.SessionView, 401))
async def get_session(session: LiveSession) -> Response:
    data = {
        "session": session.summary(),
        "note": "Session retrieved. This server remembers your session across requests.",
    }
    return success(data, "Session information")


async def merge_into(services: Any, session: Session, patch: dict[str, Any]) -> Session:
    check_size({**session.data, **patch}, services.settings.max_session_data_bytes, "session data")
    updated = await services.sessions.update(session.id, patch)
    if updated is None:
        raise ApiError(401, "Session not found or expired")
    return updated  # type: ignore[no-any-return]


@router.put(
    "/session",
    openapi_extra=schemas.body(schemas.UpdateSession),
    responses=schemas.answers(schemas.SessionUpdated, 400, 401, 413),
)
async def update_session(body: Body, session: LiveSession, services: ServicesDep) -> Response:
    patch = body.get("data")
    if not isinstance(patch, dict):
        raise validation_error("data", "Data must be an object")
    updated = await merge_into(services, session, patch)
    data = {
        "session": {
            "id": updated.id,
            "data": updated.data,
            "lastAccessed": js_iso(updated.last_accessed),
        },
        "note": "Session updated. The server maintains this state for your future requests.",
    }
    return success(data, "Session updated successfully")


@router.delete("/session", responses=schemas.answers(schemas.SessionEnded, 401))
async def delete_session(session: LiveSession, services: ServicesDep) -> Response:
    deleted = await services.sessions.destroy(session.id)
    services.counts.changed()
    if deleted:
        session_event("revoked", hint=id_hint(session.key), userId=session.user_id, by="logout")
    data = {
        "sessionId": session.id,
        "deleted": deleted,
        "note": "Session terminated. All server-side state for this session has been cleared.",
    }
    response = success(data, "Session terminated")
    set_session_cookie(response, services.settings, None)
    return response


@router.get("/cart", responses=schemas.answers(schemas.CartView, 401))
async def get_cart(request: Request, services: ServicesDep) -> Response:
    # the cart is read while the session is checked (two stores, two round trips at once);
    # the lines are shown only if the session turns out to be live
    session_id = usable_id(request)
    key = None if session_id is None else services.sessions.key_of(session_id)
    started = None if key is None else services.carts.start_read(key)
    try:
        session = await live_session(request)
    except BaseException:
        if isinstance(started, asyncio.Future):
            started.add_done_callback(_ignore_outcome)
        raise
    if session.key != key:  # found under the previous secret's key: its cart is there too
        if isinstance(started, asyncio.Future):
            started.add_done_callback(_ignore_outcome)
        started = None
    items = await services.carts.items(session.key, started)
    data = {
        "cart": cart_view(session, items, created=True),
        "note": "Shopping cart retrieved. This is a stateful feature - the server remembers your "
        "cart across requests.",
    }
    return success(data, "Cart retrieved")


def _ignore_outcome(future: asyncio.Future[Any]) -> None:
    """A read nobody will use: fetch its error, if any, so asyncio does not report it."""
    if not future.cancelled():
        future.exception()


def quantity_of(body: dict[str, Any]) -> int:
    quantity = body.get("quantity")
    if quantity is None:
        return 1
    if isinstance(quantity, float) and quantity.is_integer():
        quantity = int(quantity)
    if type(quantity) is not int or not 1 <= quantity <= MAX_QUANTITY:
        raise validation_error("quantity", f"Quantity must be an integer from 1 to {MAX_QUANTITY}")
    return quantity


@router.post(
    "/cart/add",
    openapi_extra=schemas.body(schemas.AddToCart),
    responses=schemas.answers(schemas.CartAdded, 400, 401),
)
async def add_to_cart(request: Request, services: ServicesDep) -> Response:
    # the session is checked while the body is read (each waits on its own round trip);
    # the body's errors still come first, as in Phase 1, where the JSON parser runs before
    # the session check. A refused body may still have slid its session's expiry.
    checking = asyncio.ensure_future(live_session(request))
    try:
        body = await json_object(request)
    except BaseException:
        checking.add_done_callback(_ignore_outcome)
        raise
    session = await checking
    require_fields(body, "productId")
    product_id = body["productId"]
    quantity = quantity_of(body)
    if not isinstance(product_id, str):
        raise validation_error("productId", "productId must be a string")
    if await services.catalog.get_product(product_id) is None:
        raise ApiError(400, f"Product {product_id[:100]} not found")
    try:
        items = await services.carts.add(session.key, product_id, quantity)
        if len(items) == 1 and items[0].quantity == quantity:  # the cart was empty
            services.counts.changed()
    except SessionGone:
        raise ApiError(401, "Session not found or expired") from None
    data = {
        "cart": cart_view(session, items),
        "addedItem": {"productId": product_id, "quantity": quantity},
        "note": "Item added to cart. The server maintains your cart state for future requests.",
    }
    return success(data, "Item added to cart")


@router.delete("/cart/remove/{product_id}", responses=schemas.answers(schemas.CartRemoved, 401))
async def remove_from_cart(
    product_id: str, session: LiveSession, services: ServicesDep
) -> Response:
    if "\x00" in product_id:  # no such product, and PostgreSQL would refuse the text
        items = await services.carts.items(session.key)
    else:
        items = await services.carts.remove(session.key, product_id)
        if not items:
            services.counts.changed()
    view = cart_view(session, items)
    view["updatedAt"] = js_now()
    data = {
        "cart": view,
        "removedProductId": product_id,
        "note": "Item removed from cart. Cart state updated and maintained.",
    }
    return success(data, "Item removed from cart")


@router.delete("/cart", responses=schemas.answers(schemas.CartView, 401))
async def clear_cart(session: LiveSession, services: ServicesDep) -> Response:
    await services.carts.clear(session.key)
    services.counts.changed()
    data = {
        "cart": {"sessionId": session.id, "items": [], "total": 0, "updatedAt": js_now()},
        "note": "Cart cleared. Empty cart state maintained for session.",
    }
    return success(data, "Cart cleared")


@router.get("/profile", responses=schemas.answers(schemas.Profile, 401, 404))
async def get_profile(session: LiveSession, services: ServicesDep) -> Response:
    user = await services.catalog.get_user(session.user_id)
    if user is None:
        raise ApiError(404, "User not found")
    data = {
        "profile": user,
        "note": "User profile retrieved. Authentication via session ensures you only see your "
        "own data.",
    }
    return success(data, "User profile")


@router.put(
    "/profile/preferences",
    openapi_extra=schemas.body(schemas.Preferences),
    responses=schemas.answers(schemas.PreferencesUpdated, 400, 401, 404, 413),
)
async def update_preferences(body: Body, session: LiveSession, services: ServicesDep) -> Response:
    preferences = body.get("preferences")
    if not isinstance(preferences, dict):
        raise validation_error("preferences", "Preferences must be an object")
    check_size(preferences, services.settings.max_preferences_bytes, "preferences")
    # the user's row and the session's timestamp are separate writes: made together
    saving = asyncio.ensure_future(services.catalog.set_preferences(session.user_id, preferences))
    try:
        await merge_into(services, session, {"lastPreferencesUpdate": js_now()})
    finally:
        user = await saving
    if user is None:
        raise ApiError(404, "User not found")
    data = {
        "profile": {
            "id": user["id"],
            "preferences": user["preferences"],
            "updatedAt": user.get("updatedAt"),
        },
        "note": "Preferences updated. Changes persist across sessions (stored in user data).",
    }
    return success(data, "Preferences updated")


@router.get("/demonstrate/stateful", responses=schemas.answers(schemas.StatefulDemonstration, 401))
async def demonstrate(session: LiveSession, services: ServicesDep) -> Response:
    now = utcnow()
    result = await services.sessions.increment(
        session.id, "visitCount", {"lastDemonstrationVisit": js_iso(now)}
    )
    if result is None:
        raise ApiError(401, "Session not found or expired")
    _, visits = result
    data = {
        "demonstration": "Stateful Server Behavior",
        "sessionInfo": {
            "sessionId": session.id,
            "userId": session.user_id,
            "sessionCreated": js_iso(session.created_at),
            "sessionAge": age_text(session.created_at, now),
        },
        "visitCount": visits,
        "timestamp": js_iso(now),
        "explanation": stateful_explanation(visits, session.id),
        "note": "Refresh this page to see the visit count increase!",
    }
    return success(data, "Stateful behavior demonstration")


@router.post(
    "/workflow/start",
    openapi_extra=schemas.body(schemas.WorkflowRequest, required=False),
    responses=schemas.answers(schemas.WorkflowStarted, 400, 401, 413),
)
async def workflow_start(_body: Body, session: LiveSession, services: ServicesDep) -> Response:
    workflow = start(utcnow())
    await merge_into(services, session, {"workflow": workflow})
    data = {
        "workflowId": workflow["id"],
        "currentStep": WORKFLOW_STEPS[0],
        "nextStep": WORKFLOW_STEPS[1],
        "message": "Workflow started. Proceed to /workflow/next to continue.",
        "note": "This demonstrates stateful multi-step processes where server maintains workflow "
        "state.",
    }
    return success(data, "Workflow started")


@router.post(
    "/workflow/next",
    openapi_extra=schemas.body(schemas.WorkflowRequest, required=False),
    responses=schemas.answers(schemas.WorkflowStep, 400, 401, 413),
)
async def workflow_next(_body: Body, session: LiveSession, services: ServicesDep) -> Response:
    step = advance(session.data.get("workflow"), utcnow())
    if step is None:
        raise ApiError(400, "No active workflow. Start one first.")
    await merge_into(services, session, {"workflow": step.workflow})
    return success(step.data, step.message)
