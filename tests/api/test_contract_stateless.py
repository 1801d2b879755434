"""The stateless API's contract beyond the rows of `statebridge check` (those are tests in
test_contract_table.py): more inputs per endpoint, exact values, headers and bodies, over
HTTP on every place the API is served.

The stateless API lives at the root of the Phase 1 stateless port, at the root of the
combined port, and under /api/stateless on the combined port; every test runs on all three,
on the embedded and on the services configuration.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from statebridge.ops.contract.shapes import (
    BOOLEAN,
    INTEGER,
    NUMBER,
    OBJECT,
    STRING,
    TIME,
    array_of,
    between,
    matching,
)
from tests.support.envelope import assert_error, assert_matches, success_data
from tests.support.servers import Server

MOUNTS = ["legacy", "root", "prefixed"]
USER = {"id": STRING, "name": STRING, "email": STRING, "preferences": OBJECT}
PRODUCT = {"id": STRING, "name": STRING, "price": NUMBER, "category": STRING}
PRODUCTS = {
    "prod001": ("Sample Product A", 29.99, "electronics"),
    "prod002": ("Sample Product B", 19.99, "books"),
    "prod003": ("Sample Product C", 9.99, "accessories"),
}
STATELESS_EXPLANATION = [
    "This server is STATELESS:",
    "1. I don't remember your previous requests",
    "2. The request count is server-wide, not per-client",
    "3. Each request contains all necessary information",
    "4. No sessions, no authentication state",
    "5. Easily scalable - any instance can handle any request",
]
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "SAMEORIGIN",
    "referrer-policy": "no-referrer",
}


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=15) as client:
        yield client


@pytest.fixture(params=MOUNTS)
def sl(request: pytest.FixtureRequest, server: Server) -> str:
    """Base URL of the stateless API in one of the places it is mounted."""
    return {
        "legacy": server.stateless_url,
        "root": server.url,
        "prefixed": f"{server.url}/api/stateless",
    }[request.param]


def test_health_reports_the_shared_request_count(http: httpx.Client, sl: str) -> None:
    counted = success_data(http.get(f"{sl}/info"), "Stateless server information")
    health = success_data(http.get(f"{sl}/health"), "Stateless server is healthy")
    assert health["requestCount"] >= counted["requestCount"]


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({}, "operation, values"),
        ({"operation": "add"}, "values"),
        ({"values": [1, 2]}, "operation"),
        ({"operation": None, "values": None}, "operation, values"),
    ],
)
def test_calculate_missing_fields(
    http: httpx.Client, sl: str, body: dict[str, object], missing: str
) -> None:
    assert_error(
        http.post(f"{sl}/calculate", json=body),
        400,
        "Validation failed",
        [{"field": "body", "message": f"Missing required fields: {missing}"}],
    )


@pytest.mark.parametrize("values", [[], "1,2", {"a": 1}, 7])
def test_calculate_values_must_be_a_non_empty_array(
    http: httpx.Client, sl: str, values: object
) -> None:
    assert_error(
        http.post(f"{sl}/calculate", json={"operation": "add", "values": values}),
        400,
        "Validation failed",
        [{"field": "values", "message": "Values must be a non-empty array"}],
    )


@pytest.mark.parametrize("values", [[1, "2"], [True, 1], [1, None], [[1]], [{"n": 1}]])
def test_calculate_values_must_be_numbers(http: httpx.Client, sl: str, values: object) -> None:
    assert_error(
        http.post(f"{sl}/calculate", json={"operation": "add", "values": values}),
        400,
        "Validation failed",
        [{"field": "values", "message": "All values must be numbers"}],
    )


@pytest.mark.parametrize(
    ("query", "count", "kind"),
    [
        ("", 1, "number"),
        ("?count=5&type=number", 5, "number"),
        ("?count=3&type=string", 3, "string"),
        ("?count=99&type=boolean", 10, "boolean"),
        ("?count=0", 1, "number"),
        ("?count=-4", 1, "number"),
        ("?count=abc", 1, "number"),
        ("?count=7.9", 7, "number"),
    ],
)
def test_random(http: httpx.Client, sl: str, query: str, count: int, kind: str) -> None:
    data = success_data(http.get(f"{sl}/random{query}"), "Random data generated")
    item = {"number": between(0, 1), "string": matching(r"^[0-9a-z]+$"), "boolean": BOOLEAN}[kind]
    assert_matches(
        {
            "count": count,
            "type": kind,
            "values": array_of(item, length=count),
            "generatedAt": TIME,
            "note": "Random values are generated fresh each time with no memory of previous "
            "generations.",
        },
        data,
    )


def test_users(http: httpx.Client, sl: str) -> None:
    data = success_data(http.get(f"{sl}/users"), "Users retrieved")
    assert_matches(
        {
            "users": array_of(USER),
            "count": INTEGER,
            "retrievedAt": TIME,
            "note": "User data is retrieved fresh each time. No session or user-specific state "
            "is maintained.",
        },
        data,
    )
    assert data["count"] == len(data["users"]) >= 2
    by_id = {user["id"]: user for user in data["users"]}
    assert by_id["user001"]["name"] == "Test User 1"
    assert by_id["user002"]["email"] == "user2@example.com"


@pytest.mark.parametrize("user_id", ["nobody", "USER001", "user001%20", "%00"])
def test_unknown_user(http: httpx.Client, sl: str, user_id: str) -> None:
    assert_error(http.get(f"{sl}/users/{user_id}"), 404, "User not found", [])


@pytest.mark.parametrize(
    ("query", "ids", "filters"),
    [
        ("", ["prod001", "prod002", "prod003"], (None, None, None)),
        ("?category=electronics&minPrice=15", ["prod001"], ("electronics", "15", None)),
        ("?maxPrice=20", ["prod002", "prod003"], (None, None, "20")),
        ("?minPrice=10&maxPrice=20", ["prod002"], (None, "10", "20")),
        ("?minPrice=19.99&maxPrice=19.99", ["prod002"], (None, "19.99", "19.99")),
        ("?category=books", ["prod002"], ("books", None, None)),
        ("?category=nothing", [], ("nothing", None, None)),
        ("?minPrice=1e1", ["prod001", "prod002"], (None, "1e1", None)),
    ],
)
def test_products(
    http: httpx.Client,
    sl: str,
    query: str,
    ids: list[str],
    filters: tuple[str | None, str | None, str | None],
) -> None:
    data = success_data(http.get(f"{sl}/products{query}"), "Products retrieved")
    category, min_price, max_price = filters
    assert_matches(
        {
            "products": array_of(PRODUCT),
            "count": len(ids),
            "filters": {"category": category, "minPrice": min_price, "maxPrice": max_price},
            "retrievedAt": TIME,
            "note": "Product data filtered based on query parameters. No user-specific "
            "preferences applied.",
        },
        data,
    )
    assert [product["id"] for product in data["products"]] == ids
    for product in data["products"]:
        name, price, kind = PRODUCTS[product["id"]]
        assert (product["name"], product["price"], product["category"]) == (name, price, kind)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?minPrice=abc", "minPrice"),
        ("?maxPrice=cheap", "maxPrice"),
        ("?minPrice=NaN", "minPrice"),
        ("?maxPrice=Infinity", "maxPrice"),
        ("?minPrice=10&maxPrice=x20", "maxPrice"),
    ],
)
def test_products_reject_a_non_numeric_price_bound(
    http: httpx.Client, sl: str, query: str, field: str
) -> None:
    errors = assert_error(http.get(f"{sl}/products{query}"), 400, "Validation failed")
    assert [error["field"] for error in errors] == [field]


def test_demonstrate_stateless(http: httpx.Client, sl: str) -> None:
    response = http.get(f"{sl}/demonstrate/stateless", headers={"Client-ID": "contract"})
    data = success_data(response, "Stateless behavior demonstration")
    assert_matches(
        {
            "demonstration": "Stateless Server Behavior",
            "previousRequestCount": INTEGER,
            "currentRequestCount": INTEGER,
            "yourRequestNumber": INTEGER,
            "timestamp": TIME,
            "clientIdentifier": "contract",
            "explanation": STATELESS_EXPLANATION,
        },
        data,
    )
    assert data["currentRequestCount"] == data["previousRequestCount"] + 1
    assert data["yourRequestNumber"] == data["currentRequestCount"]
    anonymous = success_data(
        http.get(f"{sl}/demonstrate/stateless"), "Stateless behavior demonstration"
    )
    assert anonymous["clientIdentifier"] == "not-provided"
    assert anonymous["currentRequestCount"] > data["currentRequestCount"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/no/such/endpoint"),
        ("GET", "/healthz"),
        ("PUT", "/health"),
        ("DELETE", "/users"),
        ("GET", "/calculate"),
        ("POST", "/random"),
        ("PATCH", "/products"),
    ],
)
def test_unknown_routes_and_methods(http: httpx.Client, sl: str, method: str, path: str) -> None:
    assert_error(http.request(method, f"{sl}{path}"), 404, "Endpoint not found", [])


def test_security_and_instance_headers(http: httpx.Client, sl: str) -> None:
    for response in (http.get(f"{sl}/health"), http.get(f"{sl}/no/such/endpoint")):
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name, "").lower() == value.lower(), name
        assert response.headers.get("x-instance-id")
        assert "x-powered-by" not in response.headers


def test_cors(http: httpx.Client, sl: str) -> None:
    origin = {"Origin": "http://app.example"}
    response = http.get(f"{sl}/health", headers=origin)
    assert response.headers.get("access-control-allow-origin") in ("*", "http://app.example")
    exposed = response.headers.get("access-control-expose-headers", "").lower()
    assert "session-id" in [name.strip() for name in exposed.split(",")]
    preflight = http.options(
        f"{sl}/calculate",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, client-id, session-id",
        },
    )
    assert preflight.status_code in (200, 204)
    allowed = preflight.headers.get("access-control-allow-headers", "").lower()
    for header in ("content-type", "session-id", "client-id", "authorization"):
        assert header in allowed


def test_malformed_json_is_a_validation_error(http: httpx.Client, sl: str) -> None:
    for raw in (b"{bad", b'{"operation": "add", "values": [1,', b"\xff\xfe"):
        response = http.post(
            f"{sl}/calculate", content=raw, headers={"Content-Type": "application/json"}
        )
        assert_error(response, 400, "Validation failed")


@pytest.mark.parametrize("raw", [b"", b"null", b"  \n"])
def test_empty_and_null_bodies_count_as_an_empty_object(
    http: httpx.Client, sl: str, raw: bytes
) -> None:
    response = http.post(
        f"{sl}/calculate", content=raw, headers={"Content-Type": "application/json"}
    )
    assert_error(
        response,
        400,
        "Validation failed",
        [{"field": "body", "message": "Missing required fields: operation, values"}],
    )


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"add"', b"42"])
def test_a_non_object_body_is_a_validation_error(http: httpx.Client, sl: str, raw: bytes) -> None:
    response = http.post(
        f"{sl}/calculate", content=raw, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "Validation failed")


def test_a_body_over_one_megabyte_is_413(http: httpx.Client, sl: str) -> None:
    padding = "x" * (1024 * 1024)
    raw = ('{"operation": "add", "values": [1], "pad": "' + padding + '"}').encode()
    response = http.post(
        f"{sl}/calculate", content=raw, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, response.json()["message"])
    just_under = ('{"operation": "add", "values": [1], "pad": "' + "x" * 1000 + '"}').encode()
    ok = http.post(
        f"{sl}/calculate", content=just_under, headers={"Content-Type": "application/json"}
    )
    success_data(ok, "Calculation successful")


def test_a_chunked_body_over_one_megabyte_is_413(http: httpx.Client, sl: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"operation": "add", "values": [1], "pad": "'
        for _ in range(20):
            yield b"y" * 65536
        yield b'"}'

    response = http.post(
        f"{sl}/calculate", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


def test_timestamps_are_javascript_iso(http: httpx.Client, sl: str) -> None:
    body = http.get(f"{sl}/info").json()
    assert_matches({"timestamp": TIME, "data": {"timestamp": TIME}}, body)
    error = http.get(f"{sl}/nothing").json()
    assert_matches({"timestamp": TIME}, error)


def test_client_context_null_when_falsy(http: httpx.Client, sl: str) -> None:
    for context in (None, "", 0, False):
        body = {"operation": "add", "values": [1], "clientContext": context}
        data = success_data(http.post(f"{sl}/calculate", json=body), "Calculation successful")
        assert data["clientContext"] is None
