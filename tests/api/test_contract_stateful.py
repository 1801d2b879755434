"""The stateful API's contract beyond the rows of `statebridge check` (those are tests in
test_contract_table.py): more inputs per endpoint, state across requests, headers and
bodies, expiry and two instances, over HTTP.

It runs on the Phase 1 stateful port and under /api/stateful on the combined port, on the
embedded and the services configuration. Session expiry gets its own short-lived servers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from statebridge.ops.contract.shapes import (
    INTEGER,
    NUMBER,
    OBJECT,
    STRING,
    TIME,
    array_of,
    matching,
    nullable,
    parse_js_time,
)
from statebridge.ops.contract.table import UUID4 as UUID
from tests.support.envelope import assert_error, assert_matches, success_data
from tests.support.routes import SESSION_ROUTES
from tests.support.servers import Server

PRICES = {"prod001": Decimal("29.99"), "prod002": Decimal("19.99"), "prod003": Decimal("9.99")}
SEED_PREFERENCES = {"user001": {"theme": "light", "language": "en"}}
ITEM = {"productId": STRING, "name": STRING, "price": NUMBER, "quantity": INTEGER, "addedAt": TIME}
NO_WORKFLOW = "No active workflow. Start one first."
STEPS = ["started", "data_collected", "processing", "completed"]
IDLE = timedelta(minutes=15)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

ROUTE_IDS = [f"{method} {path}" for method, path, _ in SESSION_ROUTES]


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=15) as client:
        yield client


@pytest.fixture(params=["legacy", "prefixed"])
def sf(request: pytest.FixtureRequest, server: Server) -> str:
    """Base URL of the stateful API: its own port, or /api/stateful on the combined one."""
    if request.param == "legacy":
        return server.stateful_url
    return f"{server.url}/api/stateful"


class Api:
    """A thin client for one stateful base URL, with the session header when there is one."""

    def __init__(self, http: httpx.Client, base: str) -> None:
        self.http = http
        self.base = base

    def call(
        self, method: str, path: str, session: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if session is not None:
            headers["Session-ID"] = session
        return self.http.request(method, f"{self.base}{path}", headers=headers, **kwargs)

    def create(self, user: str = "user001", data: dict[str, Any] | None = None) -> str:
        body: dict[str, Any] = {"userId": user}
        if data is not None:
            body["data"] = data
        response = self.call("POST", "/session", json=body)
        session_id = success_data(response, "Session created successfully")["session"]["id"]
        return str(session_id)

    def cart(self, session: str) -> dict[str, Any]:
        cart: dict[str, Any] = success_data(self.call("GET", "/cart", session), "Cart retrieved")[
            "cart"
        ]
        return cart

    def add(self, session: str, product: str, quantity: Any = None) -> httpx.Response:
        body: dict[str, Any] = {"productId": product}
        if quantity is not None:
            body["quantity"] = quantity
        return self.call("POST", "/cart/add", session, json=body)


@pytest.fixture
def api(http: httpx.Client, sf: str) -> Api:
    return Api(http, sf)


@pytest.fixture
def session(api: Api) -> Iterator[str]:
    """A fresh session of user001, ended afterwards."""
    session_id = api.create("user001", {"theme": "light"})
    yield session_id
    api.call("DELETE", "/session", session_id)


@pytest.fixture
def restore_preferences(api: Api) -> Iterator[None]:
    """Tests that change user001's preferences put Phase 1's seed values back afterwards, so
    that the replayed transcript still sees the keys it recorded."""
    yield
    session_id = api.create("user001")
    body = {"preferences": SEED_PREFERENCES["user001"]}
    api.call("PUT", "/profile/preferences", session_id, json=body).raise_for_status()
    api.call("DELETE", "/session", session_id)


# --- health and info -------------------------------------------------------------------


def test_health_counts_sessions_and_carts(api: Api, session: str) -> None:
    before = success_data(api.call("GET", "/health"), "Stateful server is healthy")
    assert before["activeSessions"] >= 1
    success_data(api.add(session, "prod001"), "Item added to cart")
    after = success_data(api.call("GET", "/health"), "Stateful server is healthy")
    assert after["activeCarts"] >= 1


INFO = {
    "server": STRING,
    "timestamp": TIME,
    "sessionInfo": None,
    "serverStats": {"activeSessions": INTEGER, "activeCarts": INTEGER},
    "message": "I remember you and maintain your state across requests!",
    "note": "This is a stateful server - I track sessions, carts, and user preferences.",
}


@pytest.mark.parametrize("bogus", ["nope", str(uuid.uuid4())])
def test_info_with_an_unknown_session_is_still_answered(api: Api, bogus: str) -> None:
    data = success_data(api.call("GET", "/info", bogus), "Stateful server information")
    assert_matches(INFO, data)


def test_info_with_a_session(api: Api, session: str) -> None:
    data = success_data(api.call("GET", "/info", session), "Stateful server information")
    assert_matches(
        {
            **INFO,
            "sessionInfo": {
                "sessionId": session,
                "userId": "user001",
                "sessionAge": matching(r"^\d+ seconds$"),
            },
        },
        data,
    )
    assert data["serverStats"]["activeSessions"] >= 1


# --- sessions ------------------------------------------------------------------------


def test_create_session(api: Api) -> None:
    response = api.call("POST", "/session", json={"userId": "user002", "data": {"k": "v"}})
    data = success_data(response, "Session created successfully")
    assert_matches(
        {
            "session": {"id": UUID, "userId": "user002", "createdAt": TIME, "expiresAt": TIME},
            "user": {"id": "user002", "name": "Test User 2", "email": "user2@example.com"},
            "note": "Session created. Include Session-ID header in subsequent requests to "
            "maintain state.",
        },
        data,
    )
    assert response.headers["session-id"] == data["session"]["id"]
    created = parse_js_time(data["session"]["createdAt"])
    assert parse_js_time(data["session"]["expiresAt"]) - created == IDLE
    api.call("DELETE", "/session", data["session"]["id"])


def test_session_id_is_exposed_to_browsers(api: Api) -> None:
    response = api.call(
        "POST", "/session", json={"userId": "user001"}, headers={"Origin": "http://app.example"}
    )
    success_data(response, "Session created successfully")
    assert response.headers.get("access-control-allow-origin") in ("*", "http://app.example")
    exposed = response.headers.get("access-control-expose-headers", "")
    assert "session-id" in [name.strip().lower() for name in exposed.split(",")]
    api.call("DELETE", "/session", response.headers["session-id"])


def test_session_ids_come_only_from_the_server(api: Api, session: str) -> None:
    chosen = str(uuid.uuid4())
    for offered in (chosen, session):
        response = api.call("POST", "/session", offered, json={"userId": "user001"})
        data = success_data(response, "Session created successfully")
        new_id = data["session"]["id"]
        assert new_id != offered
        assert response.headers["session-id"] == new_id
        api.call("DELETE", "/session", new_id)
    assert_error(api.call("GET", "/session", chosen), 401, "Session not found or expired")


def test_session_ids_are_distinct_uuid4s(api: Api) -> None:
    ids = [api.create("user001") for _ in range(8)]
    assert len(set(ids)) == len(ids)
    for session_id in ids:
        assert_matches(UUID, session_id)
        api.call("DELETE", "/session", session_id)


@pytest.mark.parametrize("body", [{}, {"data": {}}, {"userId": None}])
def test_create_session_needs_a_user_id(api: Api, body: dict[str, Any]) -> None:
    response = api.call("POST", "/session", json=body)
    assert_error(
        response,
        400,
        "Validation failed",
        [{"field": "body", "message": "Missing required fields: userId"}],
    )
    assert "session-id" not in response.headers


@pytest.mark.parametrize("user", ["nobody", 42, "USER001", ["user001"]])
def test_create_session_for_an_unknown_user(api: Api, user: Any) -> None:
    response = api.call("POST", "/session", json={"userId": user})
    assert_error(response, 404, "User not found", [])
    assert "session-id" not in response.headers


def test_get_session(api: Api) -> None:
    session_id = api.create("user001", {"theme": "light", "nested": {"a": [1, 2]}})
    data = success_data(api.call("GET", "/session", session_id), "Session information")
    assert_matches(
        {
            "session": {
                "id": session_id,
                "userId": "user001",
                "createdAt": TIME,
                "lastAccessed": TIME,
                "expiresAt": TIME,
                "data": {"theme": "light", "nested": {"a": [1, 2]}},
            },
            "note": "Session retrieved. This server remembers your session across requests.",
        },
        data,
    )
    view = data["session"]
    assert parse_js_time(view["lastAccessed"]) >= parse_js_time(view["createdAt"])
    api.call("DELETE", "/session", session_id)


def test_sliding_expiry_moves_with_each_use(api: Api, session: str) -> None:
    first = success_data(api.call("GET", "/session", session), "Session information")["session"]
    time.sleep(0.05)
    second = success_data(api.call("GET", "/session", session), "Session information")["session"]
    for view in (first, second):
        assert parse_js_time(view["expiresAt"]) - parse_js_time(view["lastAccessed"]) == IDLE
    assert parse_js_time(second["lastAccessed"]) > parse_js_time(first["lastAccessed"])
    assert parse_js_time(second["expiresAt"]) > parse_js_time(first["expiresAt"])
    assert second["createdAt"] == first["createdAt"]


def test_update_session_merges_key_by_key(api: Api, session: str) -> None:
    response = api.call("PUT", "/session", session, json={"data": {"lastAction": "browse"}})
    data = success_data(response, "Session updated successfully")
    assert_matches(
        {
            "session": {
                "id": session,
                "data": {"theme": "light", "lastAction": "browse"},
                "lastAccessed": TIME,
            },
            "note": "Session updated. The server maintains this state for your future requests.",
        },
        data,
    )
    body = {"data": {"lastAction": "buy", "n": 2.5}}
    again = success_data(
        api.call("PUT", "/session", session, json=body), "Session updated successfully"
    )
    assert again["session"]["data"] == {"theme": "light", "lastAction": "buy", "n": 2.5}
    stored = success_data(api.call("GET", "/session", session), "Session information")
    assert stored["session"]["data"] == again["session"]["data"]


@pytest.mark.parametrize("value", ["not-an-object", [], [1, 2], 7, True, None])
def test_update_session_needs_an_object(api: Api, session: str, value: Any) -> None:
    assert_error(
        api.call("PUT", "/session", session, json={"data": value}),
        400,
        "Validation failed",
        [{"field": "data", "message": "Data must be an object"}],
    )
    stored = success_data(api.call("GET", "/session", session), "Session information")
    assert stored["session"]["data"] == {"theme": "light"}


def test_delete_session(api: Api) -> None:
    session_id = api.create("user001")
    data = success_data(api.call("DELETE", "/session", session_id), "Session terminated")
    assert_matches(
        {
            "sessionId": session_id,
            "deleted": True,
            "note": "Session terminated. All server-side state for this session has been cleared.",
        },
        data,
    )
    for method, path, body in SESSION_ROUTES:
        response = api.call(method, path, session_id, json=body)
        assert_error(response, 401, "Session not found or expired", [])


def test_deleting_a_session_removes_its_cart(api: Api) -> None:
    old = api.create("user002")
    success_data(api.add(old, "prod001", 2), "Item added to cart")
    success_data(api.call("DELETE", "/session", old), "Session terminated")
    assert_error(api.call("GET", "/cart", old), 401, "Session not found or expired")
    new = api.create("user002")
    assert new != old
    cart = api.cart(new)
    assert (cart["items"], cart["total"], cart["itemCount"]) == ([], 0, 0)
    api.call("DELETE", "/session", new)


# --- the session guard on every session-bound route -------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), SESSION_ROUTES, ids=ROUTE_IDS)
def test_session_bound_routes_need_a_session_header(
    api: Api, method: str, path: str, body: dict[str, Any] | None
) -> None:
    assert_error(api.call(method, path, json=body), 401, "Valid session required", [])
    empty = api.call(method, path, json=body, headers={"Session-ID": ""})
    assert_error(empty, 401, "Valid session required", [])


@pytest.mark.parametrize(("method", "path", "body"), SESSION_ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize(
    "bogus", ["made-up-session", "00000000-0000-4000-8000-000000000000", "*", "x" * 300]
)
def test_session_bound_routes_refuse_unknown_ids(
    api: Api, method: str, path: str, body: dict[str, Any] | None, bogus: str
) -> None:
    response = api.call(method, path, bogus, json=body)
    assert_error(response, 401, "Session not found or expired", [])


def test_an_unknown_id_creates_no_cart(api: Api) -> None:
    before = success_data(api.call("GET", "/health"), "Stateful server is healthy")
    bogus = str(uuid.uuid4())
    assert_error(api.call("GET", "/cart", bogus), 401, "Session not found or expired")
    assert_error(api.add(bogus, "prod001"), 401, "Session not found or expired")
    after = success_data(api.call("GET", "/health"), "Stateful server is healthy")
    assert after["activeCarts"] <= before["activeCarts"]


# --- cart ----------------------------------------------------------------------------


def test_add_to_cart(api: Api, session: str) -> None:
    first = success_data(api.add(session, "prod001", 2), "Item added to cart")
    assert_matches(
        {
            "cart": {
                "sessionId": session,
                "items": array_of(ITEM, length=1),
                "total": 59.98,
                "itemCount": 1,
                "updatedAt": TIME,
            },
            "addedItem": {"productId": "prod001", "quantity": 2},
            "note": "Item added to cart. The server maintains your cart state for future requests.",
        },
        first,
    )
    assert_matches(
        {"productId": "prod001", "name": "Sample Product A", "price": 29.99, "quantity": 2},
        first["cart"]["items"][0],
    )
    second = success_data(api.add(session, "prod002"), "Item added to cart")
    assert second["addedItem"] == {"productId": "prod002", "quantity": 1}
    assert [(i["productId"], i["quantity"]) for i in second["cart"]["items"]] == [
        ("prod001", 2),
        ("prod002", 1),
    ]
    assert (second["cart"]["total"], second["cart"]["itemCount"]) == (79.97, 2)
    third = success_data(api.add(session, "prod001", 1), "Item added to cart")
    assert [(i["productId"], i["quantity"]) for i in third["cart"]["items"]] == [
        ("prod001", 3),
        ("prod002", 1),
    ]
    assert third["cart"]["items"][0]["addedAt"] == first["cart"]["items"][0]["addedAt"]
    assert third["cart"]["total"] == 109.96
    cart = api.cart(session)
    assert_matches(
        {
            "sessionId": session,
            "items": array_of(ITEM, length=2),
            "total": 109.96,
            "itemCount": 2,
            "createdAt": TIME,
            "updatedAt": TIME,
        },
        cart,
    )


def test_cart_totals_are_rounded_to_cents(api: Api, session: str) -> None:
    quantities = {"prod001": 3, "prod002": 1, "prod003": 1}
    naive = 0.0
    for product, quantity in quantities.items():
        success_data(api.add(session, product, quantity), "Item added to cart")
        naive += float(PRICES[product]) * quantity
    exact = sum(PRICES[p] * q for p, q in quantities.items())
    assert naive != float(exact)  # the float sum Phase 1 would have sent: 119.94999999999999
    response = api.call("GET", "/cart", session)
    total = success_data(response, "Cart retrieved")["cart"]["total"]
    assert total == round(float(exact), 2) == 119.95
    assert '"total":119.95' in response.text.replace(" ", "")


@pytest.mark.parametrize("quantity", ["2", 0, -1, 1001, 1.5, True, False, [1], {"n": 1}, ""])
def test_cart_quantity_must_be_an_integer_from_1_to_1000(
    api: Api, session: str, quantity: Any
) -> None:
    errors = assert_error(api.add(session, "prod001", quantity), 400, "Validation failed")
    assert [error["field"] for error in errors] == ["quantity"]
    assert api.cart(session)["items"] == []


@pytest.mark.parametrize("quantity", [1, 1000, 2.0])
def test_cart_quantity_bounds_are_accepted(api: Api, session: str, quantity: Any) -> None:
    data = success_data(api.add(session, "prod003", quantity), "Item added to cart")
    assert data["addedItem"] == {"productId": "prod003", "quantity": int(quantity)}
    assert data["cart"]["items"][0]["quantity"] == int(quantity)
    assert data["cart"]["total"] == float(PRICES["prod003"] * int(quantity))


@pytest.mark.parametrize("body", [{"quantity": 1}, {"productId": None}, {}])
def test_add_to_cart_needs_a_product_id(api: Api, session: str, body: dict[str, Any]) -> None:
    assert_error(
        api.call("POST", "/cart/add", session, json=body),
        400,
        "Validation failed",
        [{"field": "body", "message": "Missing required fields: productId"}],
    )


def test_add_an_unknown_product(api: Api, session: str) -> None:
    response = api.add(session, "nope", 1)
    assert_error(response, 400, "Product nope not found", [])
    assert api.cart(session)["items"] == []


def test_remove_from_cart(api: Api, session: str) -> None:
    api.add(session, "prod001", 3)
    api.add(session, "prod002", 1)
    response = api.call("DELETE", "/cart/remove/prod002", session)
    data = success_data(response, "Item removed from cart")
    assert_matches(
        {
            "cart": {
                "sessionId": session,
                "items": array_of(ITEM, length=1),
                "total": 89.97,
                "itemCount": 1,
                "updatedAt": TIME,
            },
            "removedProductId": "prod002",
            "note": "Item removed from cart. Cart state updated and maintained.",
        },
        data,
    )
    absent = success_data(
        api.call("DELETE", "/cart/remove/prod002", session), "Item removed from cart"
    )
    assert absent["removedProductId"] == "prod002"
    assert absent["cart"]["total"] == 89.97
    unknown = success_data(
        api.call("DELETE", "/cart/remove/no-such-thing", session), "Item removed from cart"
    )
    assert unknown["cart"]["itemCount"] == 1


def test_clear_cart(api: Api, session: str) -> None:
    api.add(session, "prod001", 2)
    data = success_data(api.call("DELETE", "/cart", session), "Cart cleared")
    assert_matches(
        {
            "cart": {"sessionId": session, "items": [], "total": 0, "updatedAt": TIME},
            "note": "Cart cleared. Empty cart state maintained for session.",
        },
        data,
    )
    assert api.cart(session)["items"] == []
    success_data(api.call("DELETE", "/cart", session), "Cart cleared")


def test_carts_belong_to_their_session(api: Api, session: str) -> None:
    other = api.create("user001")
    api.add(session, "prod001", 1)
    assert api.cart(other)["items"] == []
    api.call("DELETE", "/session", other)


# --- profile and preferences ------------------------------------------------------------


def test_profile(api: Api, session: str) -> None:
    data = success_data(api.call("GET", "/profile", session), "User profile")
    assert_matches(
        {
            "profile": {
                "id": "user001",
                "name": "Test User 1",
                "email": "user1@example.com",
                "preferences": OBJECT,
            },
            "note": "User profile retrieved. Authentication via session ensures you only see "
            "your own data.",
        },
        data,
    )
    for key in ("createdAt", "updatedAt"):
        assert_matches(nullable(TIME), data["profile"].get(key))


@pytest.mark.usefixtures("restore_preferences")
def test_preferences_replace_and_outlive_the_session(api: Api, session: str) -> None:
    wanted = {"theme": "dark", "language": "fr", "notifications": True}
    response = api.call("PUT", "/profile/preferences", session, json={"preferences": wanted})
    data = success_data(response, "Preferences updated")
    assert_matches(
        {
            "profile": {"id": "user001", "preferences": wanted, "updatedAt": TIME},
            "note": "Preferences updated. Changes persist across sessions (stored in user data).",
        },
        data,
    )
    # every other read still works right after a catalog write (cart lines name products)
    assert api.cart(session)["items"] == []
    success_data(api.add(session, "prod002"), "Item added to cart")
    assert api.cart(session)["total"] == 19.99
    stored = success_data(api.call("GET", "/session", session), "Session information")
    assert_matches({"lastPreferencesUpdate": TIME, "theme": "light"}, stored["session"]["data"])
    replaced = {"currency": "USD"}
    api.call("PUT", "/profile/preferences", session, json={"preferences": replaced})
    api.call("DELETE", "/session", session)
    second = api.create("user001")
    profile = success_data(api.call("GET", "/profile", second), "User profile")["profile"]
    assert profile["preferences"] == replaced
    api.call("DELETE", "/session", second)


@pytest.mark.parametrize("value", [7, [], ["dark"], "dark", None, False])
def test_preferences_must_be_an_object(api: Api, session: str, value: Any) -> None:
    assert_error(
        api.call("PUT", "/profile/preferences", session, json={"preferences": value}),
        400,
        "Validation failed",
        [{"field": "preferences", "message": "Preferences must be an object"}],
    )


# --- demonstration and workflow ---------------------------------------------------------


def test_demonstrate_stateful_counts_visits(api: Api, session: str) -> None:
    for visit in (1, 2, 3):
        response = api.call("GET", "/demonstrate/stateful", session)
        data = success_data(response, "Stateful behavior demonstration")
        assert_matches(
            {
                "demonstration": "Stateful Server Behavior",
                "sessionInfo": {
                    "sessionId": session,
                    "userId": "user001",
                    "sessionCreated": TIME,
                    "sessionAge": matching(r"^\d+ seconds$"),
                },
                "visitCount": visit,
                "timestamp": TIME,
                "explanation": array_of(STRING, length=7),
                "note": "Refresh this page to see the visit count increase!",
            },
            data,
        )
        assert data["explanation"][0] == "This server is STATEFUL:"
        assert data["explanation"][1] == f"1. I remember you! This is visit #{visit}"
        assert data["explanation"][2] == f"2. Your session ID: {session}"
    stored = success_data(api.call("GET", "/session", session), "Session information")
    assert_matches(
        {"visitCount": 3, "lastDemonstrationVisit": TIME, "theme": "light"},
        stored["session"]["data"],
    )


def test_workflow_walks_through_its_steps(api: Api, session: str) -> None:
    # Transcript rows 45-50.
    assert_error(api.call("POST", "/workflow/next", session, json={}), 400, NO_WORKFLOW, [])
    started = success_data(
        api.call("POST", "/workflow/start", session, json={}), "Workflow started"
    )
    assert_matches(
        {
            "workflowId": matching(r"^workflow_\d{13}$"),
            "currentStep": "started",
            "nextStep": "data_collected",
            "message": "Workflow started. Proceed to /workflow/next to continue.",
            "note": "This demonstrates stateful multi-step processes where server maintains "
            "workflow state.",
        },
        started,
    )
    workflow_id = started["workflowId"]
    note = "Each request advances the workflow, with state maintained by the server."
    expected = [
        ("data_collected", "processing", "2/4"),
        ("processing", "completed", "3/4"),
        ("completed", "completed", "4/4"),
    ]
    for current, following, progress in expected:
        response = api.call("POST", "/workflow/next", session, json={})
        assert_matches(
            {
                "workflowId": workflow_id,
                "currentStep": current,
                "nextStep": following,
                "progress": progress,
                "message": f"Proceeded to step: {current}",
                "note": note,
            },
            success_data(response, "Workflow advanced"),
        )
    stored = success_data(api.call("GET", "/session", session), "Session information")
    workflow = stored["session"]["data"]["workflow"]
    assert_matches(
        {"id": workflow_id, "currentStep": "completed", "steps": STEPS, "startedAt": TIME},
        workflow,
    )
    done = success_data(api.call("POST", "/workflow/next", session, json={}), "Workflow completed")
    assert_matches(
        {
            "workflowId": workflow_id,
            "currentStep": "completed",
            "message": "Workflow completed!",
            "steps": STEPS,
            "startedAt": workflow["startedAt"],
            "completedAt": TIME,
            "note": "Workflow state maintained across multiple requests.",
        },
        done,
    )
    assert parse_js_time(done["completedAt"]) >= parse_js_time(done["startedAt"])
    epoch_ms = int(workflow_id.removeprefix("workflow_"))
    started_at = parse_js_time(workflow["startedAt"])
    assert epoch_ms == (started_at - EPOCH) // timedelta(milliseconds=1)


@pytest.mark.parametrize("raw", [b"null", b"", b"{}"])
def test_workflow_start_accepts_null_and_empty_bodies(api: Api, session: str, raw: bytes) -> None:
    # axios sends `null` for `post(url)`; Phase 1 answered 500 to its own demo client.
    headers = {"Content-Type": "application/json"}
    response = api.call("POST", "/workflow/start", session, content=raw, headers=headers)
    success_data(response, "Workflow started")
    following = api.call("POST", "/workflow/next", session, content=raw, headers=headers)
    success_data(following, "Workflow advanced")


def test_workflow_restart_begins_again(api: Api, session: str) -> None:
    api.call("POST", "/workflow/start", session)
    api.call("POST", "/workflow/next", session)
    api.call("POST", "/workflow/start", session)
    step = success_data(api.call("POST", "/workflow/next", session), "Workflow advanced")
    assert (step["currentStep"], step["progress"]) == ("data_collected", "2/4")


# --- bodies --------------------------------------------------------------------------


def test_malformed_json_is_a_validation_error(api: Api, session: str) -> None:
    headers = {"Content-Type": "application/json"}
    for path in ("/session", "/profile/preferences"):
        response = api.call("PUT", path, session, content=b'{"data": {', headers=headers)
        assert_error(response, 400, "Validation failed")
    response = api.call("POST", "/session", content=b"{userId: 1}", headers=headers)
    assert_error(response, 400, "Validation failed")
    assert "session-id" not in response.headers


@pytest.mark.parametrize("who", ["live", "none", "unknown"])
@pytest.mark.parametrize(
    ("raw", "message"),
    [(b'{"productId": ', "Malformed JSON"), (b'["prod001"]', "Body must be a JSON object")],
)
def test_a_bad_cart_add_body_is_refused_before_the_session_is(
    api: Api, session: str, who: str, raw: bytes, message: str
) -> None:
    """Phase 1 parses the body before it checks the session, so a bad body is a 400 whatever
    the session; statebridge checks both at once but answers in that order."""
    headers = {"Content-Type": "application/json"}
    if who != "none":
        headers["Session-ID"] = session if who == "live" else str(uuid.uuid4())
    response = api.http.post(f"{api.base}/cart/add", content=raw, headers=headers)
    assert_error(response, 400, "Validation failed", [{"field": "body", "message": message}])
    cart = success_data(api.call("GET", "/cart", session), "Cart retrieved")
    assert cart["cart"]["items"] == []


def test_arrays_are_not_objects(api: Api, session: str) -> None:
    headers = {"Content-Type": "application/json"}
    response = api.call("PUT", "/session", session, content=b'[{"data": {}}]', headers=headers)
    assert_error(response, 400, "Validation failed")


def test_a_body_over_one_megabyte_is_413(api: Api, session: str) -> None:
    big = {"data": {"blob": "z" * (1024 * 1024 + 1)}}
    response = api.call("PUT", "/session", session, json=big)
    assert response.status_code == 413
    assert_error(response, 413, response.json()["message"])
    stored = success_data(api.call("GET", "/session", session), "Session information")
    assert "blob" not in stored["session"]["data"]


def test_nul_characters_are_refused_not_stored(api: Api, session: str) -> None:
    for method, path, body in [
        ("PUT", "/session", {"data": {"a": "x\u0000y"}}),
        ("PUT", "/session", {"data": {"\u0000": 1}}),
        ("PUT", "/profile/preferences", {"preferences": {"theme": "\u0000"}}),
        ("POST", "/cart/add", {"productId": "prod001\u0000"}),
    ]:
        assert_error(api.call(method, path, session, json=body), 400, "Validation failed")
    assert_error(
        api.call("POST", "/session", json={"userId": "user001\u0000"}), 400, "Validation failed"
    )
    removed = api.call("DELETE", "/cart/remove/%00", session)
    success_data(removed, "Item removed from cart")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nothing"), ("PUT", "/cart"), ("GET", "/cart/add"), ("POST", "/profile")],
)
def test_unknown_routes_and_methods(api: Api, method: str, path: str) -> None:
    assert_error(api.call(method, path), 404, "Endpoint not found", [])


def test_security_headers(api: Api, session: str) -> None:
    response = api.call("GET", "/cart", session)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"].upper() in ("SAMEORIGIN", "DENY")
    assert response.headers["referrer-policy"]
    assert response.headers["x-instance-id"]


# --- expiry, on servers with very short lifetimes ------------------------------------------

TTL = 2
MAX_LIFETIME = 3


@pytest.fixture(scope="module", params=["embedded", "services"])
def short_lived(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server whose sessions idle out after 2 s and end 3 s after creation at the latest."""
    env = {
        "STATEBRIDGE_SESSION_TTL": str(TTL),
        "STATEBRIDGE_SESSION_MAX_LIFETIME": str(MAX_LIFETIME),
    }
    args: list[str] = []
    if request.param == "services":
        env.update(request.getfixturevalue("services_env"))
        args = ["--migrate"]
    data_dir: Path = tmp_path_factory.mktemp(f"short-{request.param}")
    running = Server(env=env, data_dir=data_dir, args=args).start()
    yield running
    running.stop()


def server_now(http: httpx.Client, base: str) -> Any:
    """The server's clock, read without touching any session."""
    return parse_js_time(http.get(f"{base}/health").json()["timestamp"])


def test_idle_sessions_expire(http: httpx.Client, short_lived: Server) -> None:
    api = Api(http, short_lived.stateful_url)
    response = api.call("POST", "/session", json={"userId": "user001"})
    created = success_data(response, "Session created successfully")["session"]
    session_id = created["id"]
    expires = parse_js_time(created["expiresAt"])
    assert expires - parse_js_time(created["createdAt"]) == timedelta(seconds=TTL)
    api.add(session_id, "prod001").raise_for_status()
    deadline = time.monotonic() + 60
    while server_now(http, api.base) <= expires + timedelta(milliseconds=500):
        assert time.monotonic() < deadline, "the server clock did not pass expiresAt"
        time.sleep(0.2)
    assert_error(api.call("GET", "/session", session_id), 401, "Session not found or expired")
    assert_error(api.call("GET", "/cart", session_id), 401, "Session not found or expired")
    info = success_data(api.call("GET", "/info", session_id), "Stateful server information")
    assert info["sessionInfo"] is None


def test_sessions_end_at_the_absolute_maximum(http: httpx.Client, short_lived: Server) -> None:
    api = Api(http, short_lived.stateful_url)
    created = success_data(
        api.call("POST", "/session", json={"userId": "user001"}), "Session created successfully"
    )["session"]
    session_id = created["id"]
    born = parse_js_time(created["createdAt"])
    cap = born + timedelta(seconds=MAX_LIFETIME)
    last_alive = born
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, "the session outlived its maximum lifetime"
        response = api.call("GET", "/session", session_id)
        if response.status_code == 401:
            break
        view = success_data(response, "Session information")["session"]
        assert parse_js_time(view["expiresAt"]) <= cap
        last_alive = parse_js_time(view["lastAccessed"])
        time.sleep(0.4)
    assert_error(response, 401, "Session not found or expired", [])
    # sliding kept it alive past one idle period, and only the cap ended it
    assert last_alive - born > timedelta(seconds=TTL)
    assert parse_js_time(response.json()["timestamp"]) >= cap - timedelta(milliseconds=50)


# --- two instances on the same stores ------------------------------------------------------


@pytest.fixture(scope="module")
def twin(server: Server) -> Iterator[Server]:
    """A second statebridge process on the same database (and Redis) as `server`."""
    running = Server(env=dict(server.env), data_dir=server.data_dir).start()
    yield running
    running.stop()


def test_sessions_and_carts_are_shared_by_instances(
    http: httpx.Client, server: Server, twin: Server
) -> None:
    one, two = Api(http, server.stateful_url), Api(http, f"{twin.url}/api/stateful")
    session_id = one.create("user002")
    success_data(two.add(session_id, "prod001", 2), "Item added to cart")
    success_data(one.add(session_id, "prod001", 1), "Item added to cart")
    assert two.cart(session_id)["items"][0]["quantity"] == 3
    assert one.cart(session_id)["total"] == 89.97
    visits = [
        success_data(
            api.call("GET", "/demonstrate/stateful", session_id), "Stateful behavior demonstration"
        )["visitCount"]
        for api in (one, two, one)
    ]
    assert visits == [1, 2, 3]
    health = success_data(two.call("GET", "/health"), "Stateful server is healthy")
    assert health["activeSessions"] >= 1 and health["activeCarts"] >= 1
    success_data(two.call("DELETE", "/session", session_id), "Session terminated")
    assert_error(one.call("GET", "/cart", session_id), 401, "Session not found or expired")
    assert (
        one.call("GET", "/info").headers["x-instance-id"]
        != two.call("GET", "/info").headers["x-instance-id"]
    )


def test_request_count_is_shared_by_instances(
    http: httpx.Client, server: Server, twin: Server
) -> None:
    counts = []
    for base in (server.stateless_url, twin.stateless_url, server.url, twin.url):
        data = success_data(http.get(f"{base}/info"), "Stateless server information")
        counts.append(data["requestCount"])
    assert counts == sorted(counts) and len(set(counts)) == len(counts), counts
