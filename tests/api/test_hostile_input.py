"""Hostile input: every bad request gets a clear 4xx in the error envelope, never a 5xx, a hang
or a dropped connection, and no request can poison a session for later ones.

Each configuration (embedded SQLite; PostgreSQL + Redis) gets a server of its own, because
these tests write odd things (preferences, huge session data) that other tests must not see.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.envelope import assert_envelope
from tests.support.private_services import PrivateRedis, own_server
from tests.support.servers import Server

JSON = {"Content-Type": "application/json"}


def assert_validation(response: httpx.Response, field: str | None = None) -> None:
    body = assert_envelope(response, 400)
    assert body["message"] == "Validation failed", body
    if field is not None:
        assert any(item["field"] == field for item in body["errors"]), body


@pytest.fixture(
    scope="module", params=["embedded", pytest.param("services", marks=pytest.mark.services)]
)
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with own_server(request.param, tmp_path_factory.mktemp(f"hostile-{request.param}")) as server:
        yield server


@pytest.fixture
def http(target: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=target.url, timeout=30) as client:
        yield client


@pytest.fixture
def session_headers(http: httpx.Client) -> dict[str, str]:
    response = http.post("/api/stateful/session", json={"userId": "user001"})
    assert response.status_code == 200, response.text
    return {"Session-ID": response.headers["Session-ID"]}


def raw_post(path: str, body: bytes, headers: dict[str, str] | None = None) -> dict[str, str]:
    return {"method": "POST", "url": path, "content": body, "headers": {**JSON, **(headers or {})}}


# -- bodies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"{bad",
        b'{"operation": "add", "values": [1, 2]',
        b'{"operation":}',
        b"\xff\xfe{}",
        b'{"operation": "add", "values": [NaN]}',
        b'{"operation": "add", "values": [Infinity]}',
        b'{"operation": "add", "values": [1]} trailing',
        b"'single quotes'",
        b'{"a": "\\ud800"}',
    ],
    ids=lambda body: repr(body[:24]),
)
def test_malformed_json_is_400(http: httpx.Client, body: bytes) -> None:
    response = http.request(**raw_post("/calculate", body))  # type: ignore[arg-type]
    assert_validation(response, "body")


@pytest.mark.parametrize("body", [b"", b"null", b"  \n "])
def test_empty_and_null_bodies_count_as_an_empty_object(http: httpx.Client, body: bytes) -> None:
    response = http.request(**raw_post("/calculate", body))  # type: ignore[arg-type]
    assert_validation(response, "body")
    assert "Missing required fields: operation, values" in response.text


def test_null_body_starts_a_workflow(http: httpx.Client, session_headers: dict[str, str]) -> None:
    response = http.request(
        **raw_post("/api/stateful/workflow/start", b"null", session_headers)  # type: ignore[arg-type]
    )
    assert_envelope(response, 200)


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"42", b"true"])
def test_a_body_that_is_not_an_object_is_400(http: httpx.Client, body: bytes) -> None:
    response = http.request(**raw_post("/calculate", body))  # type: ignore[arg-type]
    assert_validation(response, "body")


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data"])
def test_a_body_of_another_content_type_is_415(http: httpx.Client, content_type: str) -> None:
    response = http.post(
        "/calculate",
        content=b'{"operation": "add", "values": [1]}',
        headers={"Content-Type": content_type},
    )
    body = assert_envelope(response, 415)
    assert body["message"] == "Unsupported content type"


def test_an_oversized_body_is_413(http: httpx.Client) -> None:
    big = b'{"operation": "add", "values": [' + b"1," * 600_000 + b"1]}"
    response = http.post("/calculate", content=big, headers=JSON)
    body = assert_envelope(response, 413)
    assert body["message"] == "Request body too large"


def test_an_oversized_chunked_body_is_413(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"operation": "add", "values": ['
        for _ in range(130):
            yield b"1," * 4096
        yield b"1]}"

    response = http.post("/calculate", content=chunks(), headers=JSON)
    assert "content-length" not in response.request.headers
    assert_envelope(response, 413)


def test_a_lying_content_length_is_400(target: Server) -> None:
    """Content-Length that is not a number: the HTTP parser or the app refuses it; either
    way the client gets an answer, not a hang."""
    with socket.create_connection(("127.0.0.1", target.port), timeout=10) as sock:
        sock.sendall(
            b"POST /calculate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: abc\r\n\r\n{}"
        )
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


def test_deep_json_is_rejected_before_it_is_stored(
    http: httpx.Client, session_headers: dict[str, str]
) -> None:
    # depth counts the data object itself and the body around it
    accepted = {"data": {"ok": nested(29)}}
    response = http.put("/api/stateful/session", json=accepted, headers=session_headers)
    assert_envelope(response, 200)
    too_deep = {"data": {"poison": nested(40)}}
    response = http.put("/api/stateful/session", json=too_deep, headers=session_headers)
    assert_validation(response, "body")
    assert "nested deeper" in response.text
    very_deep = b'{"data": {"x": ' + b"[" * 5000 + b"]" * 5000 + b"}}"
    response = http.put(
        "/api/stateful/session", content=very_deep, headers={**JSON, **session_headers}
    )
    assert_validation(response, "body")
    # the session still answers, with what was accepted and without the rejected data
    response = http.get("/api/stateful/session", headers=session_headers)
    data = assert_envelope(response, 200)["data"]["session"]["data"]
    assert data["ok"] == nested(29)
    assert "poison" not in data and "x" not in data
    assert_envelope(http.get("/api/stateful/cart", headers=session_headers), 200)


def test_deep_json_in_a_new_session_is_rejected(http: httpx.Client) -> None:
    response = http.post(
        "/api/stateful/session", json={"userId": "user001", "data": {"x": nested(40)}}
    )
    assert_validation(response, "body")


# -- numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [[1e308, 1e308], [-1e308, -1e308], [1.7e308, 10]],
    ids=["add", "add-negative", "multiply"],
)
def test_calculate_overflow_is_400_not_infinity(http: httpx.Client, values: list[float]) -> None:
    operation = "multiply" if len(values) == 2 and values[1] == 10 else "add"
    response = http.post("/calculate", json={"operation": operation, "values": values})
    assert_validation(response, "values")
    assert "finite" in response.text


def test_a_number_literal_beyond_double_range_is_400(http: httpx.Client) -> None:
    body = b'{"operation": "add", "values": [1e400]}'
    response = http.post("/calculate", content=body, headers=JSON)
    assert_envelope(response)
    assert response.status_code == 400


def test_huge_integers_are_answered(http: httpx.Client) -> None:
    body = b'{"operation": "add", "values": [' + b"9" * 4000 + b", 1]}"
    response = http.post("/calculate", content=body, headers=JSON)
    assert_envelope(response)
    assert response.status_code in (200, 400)
    response = http.post("/calculate", json={"operation": "multiply", "values": [2**62, 2**62]})
    result = assert_envelope(response, 200)["data"]["result"]
    assert result == float(2**124)


def test_a_hundred_thousand_values_are_answered(http: httpx.Client) -> None:
    values = list(range(100_000))
    response = http.post("/calculate", json={"operation": "add", "values": values})
    assert assert_envelope(response, 200)["data"]["result"] == sum(values)
    response = http.post("/calculate", json={"operation": "average", "values": values})
    assert assert_envelope(response, 200)["data"]["result"] == sum(values) / len(values)


@pytest.mark.parametrize(
    "values", [["1", 2], [True, 1], [None], [[1]], [{"n": 1}], "1,2", 5, []], ids=repr
)
def test_values_that_are_not_numbers_are_400(http: httpx.Client, values: Any) -> None:
    response = http.post("/calculate", json={"operation": "add", "values": values})
    assert_validation(response, "values")


@pytest.mark.parametrize(
    "quantity", ["2", "23", True, False, -1, 0, 1.5, 1001, 10**30, [2], {"n": 2}, "1e3"], ids=repr
)
def test_bad_quantities_are_400_and_add_nothing(
    http: httpx.Client, session_headers: dict[str, str], quantity: Any
) -> None:
    response = http.post(
        "/api/stateful/cart/add",
        json={"productId": "prod001", "quantity": quantity},
        headers=session_headers,
    )
    assert_validation(response, "quantity")
    cart = assert_envelope(http.get("/api/stateful/cart", headers=session_headers), 200)
    assert cart["data"]["cart"]["items"] == []


def test_quantities_add_up_as_numbers(http: httpx.Client, session_headers: dict[str, str]) -> None:
    for quantity in (2, 3.0):
        response = http.post(
            "/api/stateful/cart/add",
            json={"productId": "prod001", "quantity": quantity},
            headers=session_headers,
        )
        assert_envelope(response, 200)
    cart = assert_envelope(http.get("/api/stateful/cart", headers=session_headers), 200)
    assert [item["quantity"] for item in cart["data"]["cart"]["items"]] == [5]


@pytest.mark.parametrize("product", [1, True, None, ["prod001"], {"id": "prod001"}], ids=repr)
def test_a_product_id_that_is_not_a_string_is_400(
    http: httpx.Client, session_headers: dict[str, str], product: Any
) -> None:
    response = http.post(
        "/api/stateful/cart/add", json={"productId": product}, headers=session_headers
    )
    assert_validation(response)


# -- text -------------------------------------------------------------------------------------

ODD_TEXT = "Zoë · 日本語 · 😀 · \u0001\u001f\t\n\r · \u2028\u2029 · \u007f · \ufeff · '\"\\ · <b>"


def test_non_ascii_and_control_characters_round_trip(
    http: httpx.Client, session_headers: dict[str, str]
) -> None:
    data = {ODD_TEXT: ODD_TEXT, "list": [ODD_TEXT, 1.5, None, True]}
    response = http.put("/api/stateful/session", json={"data": data}, headers=session_headers)
    assert assert_envelope(response, 200)["data"]["session"]["data"] == data
    response = http.get("/api/stateful/session", headers=session_headers)
    assert assert_envelope(response, 200)["data"]["session"]["data"] == data
    response = http.post(
        "/calculate", json={"operation": "add", "values": [1], "clientContext": ODD_TEXT}
    )
    assert assert_envelope(response, 200)["data"]["clientContext"] == ODD_TEXT


def test_non_ascii_preferences_round_trip(
    http: httpx.Client, session_headers: dict[str, str]
) -> None:
    preferences = {"name": ODD_TEXT, "nested": {ODD_TEXT: [ODD_TEXT]}}
    response = http.put(
        "/api/stateful/profile/preferences",
        json={"preferences": preferences},
        headers=session_headers,
    )
    assert assert_envelope(response, 200)["data"]["profile"]["preferences"] == preferences
    response = http.get("/api/stateful/profile", headers=session_headers)
    assert assert_envelope(response, 200)["data"]["profile"]["preferences"] == preferences


def test_nul_characters_are_400_not_500(
    http: httpx.Client, session_headers: dict[str, str]
) -> None:
    for body in ({"data": {"k": "a\u0000b"}}, {"data": {"a\u0000b": 1}}):
        response = http.put("/api/stateful/session", json=body, headers=session_headers)
        assert_validation(response, "body")
    response = http.post(
        "/api/stateful/session", json={"userId": "user\u0000001"}, headers=session_headers
    )
    assert_validation(response, "body")


# -- session ids and path ids -------------------------------------------------------------------

ABSURD_IDS = [
    "*",
    "session:*",
    "?",
    "[a-z]*",
    "sessions:live",
    "../../etc/passwd",
    "a.b.c",
    "$.data",
    "data->>'x'",
    "' OR '1'='1",
    "1; DROP TABLE sessions; --",
    "00000000-0000-0000-0000-00000000000g",
    "00000000-0000-0000-0000-0000000000000",
    "00000000-0000-0000-0000-000000000000-",
    "x" * 10_000,
    "%00",
    "ü" * 10,
]


@pytest.mark.parametrize("session_id", ABSURD_IDS, ids=lambda value: repr(value[:30]))
def test_absurd_session_ids_are_401(http: httpx.Client, session_id: str) -> None:
    headers = {"Session-ID": session_id.encode("utf-8")}
    for method, path in (("GET", "/session"), ("GET", "/cart"), ("DELETE", "/session")):
        response = http.request(method, f"/api/stateful{path}", headers=headers)  # type: ignore[arg-type]
        body = assert_envelope(response, 401)
        assert body["message"] == "Session not found or expired"


@pytest.mark.parametrize(
    "path",
    [
        "/users/%00",
        "/users/user001%00",
        "/users/%27%20OR%20%271%27%3D%271",
        "/users/1%3B%20DROP%20TABLE%20users",
        "/users/%ff%fe",
        "/users/..%2F..%2Fetc%2Fpasswd",
        "/users/" + "x" * 5000,
        "/api/stateless/users/%00",
    ],
)
def test_odd_user_ids_are_404(http: httpx.Client, path: str) -> None:
    body = assert_envelope(http.get(path), 404)
    # an encoded slash is decoded before routing: that path names no route at all
    assert body["message"] in ("User not found", "Endpoint not found")
    assert_envelope(http.get("/users/user001"), 200)


@pytest.mark.parametrize(
    "product", ["%00", "prod001%00", "%27%3B%20DELETE%20FROM%20shopping_carts%3B%20--", "%ff"]
)
def test_odd_product_ids_in_paths_change_nothing(
    http: httpx.Client, session_headers: dict[str, str], product: str
) -> None:
    response = http.post(
        "/api/stateful/cart/add", json={"productId": "prod002"}, headers=session_headers
    )
    assert_envelope(response, 200)
    response = http.delete(f"/api/stateful/cart/remove/{product}", headers=session_headers)
    assert_envelope(response, 200)
    cart = assert_envelope(http.get("/api/stateful/cart", headers=session_headers), 200)
    assert [item["productId"] for item in cart["data"]["cart"]["items"]] == ["prod002"]


@pytest.mark.parametrize(
    "query",
    [
        "/random?count=99999999999999999999999",
        "/random?count=-5",
        "/random?count=%00",
        "/products?minPrice=1e999",
        "/products?minPrice=NaN",
        "/products?maxPrice=%ff",
        "/products?category=%00",
        "/random?type=number&type=string",
    ],
)
def test_odd_query_strings_get_an_envelope(http: httpx.Client, query: str) -> None:
    response = http.get(query)
    assert_envelope(response)
    assert response.status_code in (200, 400), response.text


# -- caps -------------------------------------------------------------------------------------


def test_session_data_is_capped(http: httpx.Client, session_headers: dict[str, str]) -> None:
    response = http.put(
        "/api/stateful/session", json={"data": {"big": "x" * 70_000}}, headers=session_headers
    )
    body = assert_envelope(response, 413)
    assert body["message"] == "session data too large"
    assert body["errors"][0]["message"] == "limit 65536"
    # growing it step by step hits the same cap, and keeps what fitted
    accepted = 0
    for index in range(10):
        response = http.put(
            "/api/stateful/session",
            json={"data": {f"part{index}": "y" * 10_000}},
            headers=session_headers,
        )
        assert_envelope(response)
        if response.status_code == 413:
            break
        assert response.status_code == 200
        accepted += 1
    assert 1 <= accepted < 10
    data = assert_envelope(http.get("/api/stateful/session", headers=session_headers), 200)
    stored = data["data"]["session"]["data"]
    assert sorted(key for key in stored if key.startswith("part")) == [
        f"part{index}" for index in range(accepted)
    ]
    assert len(json.dumps(stored)) <= 65536 + 1024


def test_new_session_data_is_capped(http: httpx.Client) -> None:
    response = http.post(
        "/api/stateful/session", json={"userId": "user001", "data": {"big": "x" * 70_000}}
    )
    assert assert_envelope(response, 413)["message"] == "data too large"


def test_preferences_are_capped(http: httpx.Client, session_headers: dict[str, str]) -> None:
    response = http.put(
        "/api/stateful/profile/preferences",
        json={"preferences": {"big": "x" * 20_000}},
        headers=session_headers,
    )
    body = assert_envelope(response, 413)
    assert body["message"] == "preferences too large"


def test_the_server_still_answers_after_all_this(http: httpx.Client) -> None:
    assert_envelope(http.get("/health"), 200)
    assert_envelope(http.get("/health/ready"), 200)


# -- the store is not consulted for implausible ids --------------------------------------------


@pytest.mark.services
def test_absurd_session_ids_never_reach_redis(services_env: dict[str, str], tmp_path: Path) -> None:
    """Counted with Redis's own INFO commandstats, on a private Redis no one else uses."""
    redis = PrivateRedis(tmp_path / "redis").start()
    try:
        env = {
            "DATABASE_URL": services_env["DATABASE_URL"],
            "REDIS_URL": redis.url,
            "STATEBRIDGE_SWEEP_INTERVAL": "3600",
        }
        server = Server(env=env, data_dir=tmp_path / "server", args=["--migrate"]).start()
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                # a real session is looked up in Redis: the counter can see a lookup
                created = client.post("/api/stateful/session", json={"userId": "user001"})
                real = {"Session-ID": created.headers["Session-ID"]}
                before = redis.command_calls()
                assert_envelope(client.get("/api/stateful/session", headers=real), 200)
                assert redis.command_calls() != before
                before = redis.command_calls()
                for session_id in ABSURD_IDS:
                    headers = {"Session-ID": session_id.encode()}
                    for path in ("/session", "/cart", "/demonstrate/stateful"):
                        response = client.get(f"/api/stateful{path}", headers=headers)  # type: ignore[arg-type]
                        assert_envelope(response, 401)
                assert redis.command_calls() == before
        finally:
            server.stop()
    finally:
        redis.stop()
