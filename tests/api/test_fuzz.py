"""Fuzzing the whole HTTP surface: zero 5xx, and every answer in the Phase 1 envelope.

Two fuzzers, both bounded so the run stays in CI:
- schemathesis, from the app's own OpenAPI document: valid and invalid parameters and
  bodies for every operation, with a live session so the session-bound routes are reached;
- hypothesis, with arbitrary JSON bodies (deep, odd numbers, odd text), arbitrary
  `Session-ID` and `X-Request-ID` headers and arbitrary path segments.

The server runs on PostgreSQL + Redis: the stricter stores (PostgreSQL refuses NUL
characters, Redis keys are built from ids), so the ones where a slip would show as a 5xx.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.support.envelope import envelope_problems
from tests.support.private_services import own_server
from tests.support.servers import Server

pytestmark = pytest.mark.services
EXAMPLES = 40  # per operation (schemathesis) and per hypothesis test: bounded for CI


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with own_server("services", tmp_path_factory.mktemp("fuzz")) as server:
        yield server


@pytest.fixture(scope="module")
def session_id(fuzz_server: Server) -> str:
    response = httpx.post(f"{fuzz_server.url}/api/stateful/session", json={"userId": "user001"})
    assert response.status_code == 200, response.text
    return response.headers["Session-ID"]


@pytest.fixture(scope="module")
def api_schema(fuzz_server: Server) -> Any:
    return schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")


def as_httpx(response: Any) -> httpx.Response:
    headers = [(name, value) for name, values in response.headers.items() for value in values]
    return httpx.Response(response.status_code, headers=headers, content=response.content)


def test_schemathesis_finds_no_5xx_and_no_bare_answer(
    api_schema: Any, fuzz_server: Server, session_id: str
) -> None:
    """Every operation of the OpenAPI document, with valid and with invalid input.

    (schemathesis's own pytest decorator is not used: it trips over pytest 9's node ids.)"""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 30  # both APIs, three times over, and the probes
    for operation in operations:
        strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
            GenerationMode.NEGATIVE
        )

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        @given(case=strategy, live=st.booleans())
        def call(case: Any, live: bool) -> None:
            # with the live session the session-bound routes run; without, the 401 path
            headers = {"Session-ID": session_id} if live else None
            response = case.call(base_url=fuzz_server.url, headers=headers, timeout=30)
            label = f"{case.method} {case.formatted_path} {case.body!r:.300}"
            assert response.status_code < 500, (label, response.status_code, response.text[:500])
            problems = envelope_problems(as_httpx(response))
            assert not problems, (label, problems)

        call()


# -- hypothesis: bodies, headers and paths the schema does not describe --------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["prod001", "user001", "add", "multiply", "average", "subtract", ""])
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)
FIELDS = st.sampled_from(
    ["operation", "values", "clientContext", "userId", "data", "productId", "quantity",
     "preferences", "x"]
)  # fmt: skip
BODIES = st.dictionaries(FIELDS, JSON_VALUES, max_size=4) | JSON_VALUES
WRITES = [
    ("POST", "/calculate"),
    ("POST", "/api/stateful/session"),
    ("PUT", "/api/stateful/session"),
    ("POST", "/api/stateful/cart/add"),
    ("PUT", "/api/stateful/profile/preferences"),
    ("POST", "/api/stateful/workflow/start"),
    ("POST", "/api/stateful/workflow/next"),
]
READS = [
    "/users/{}",
    "/api/stateless/users/{}",
    "/api/stateful/cart/remove/{}",
    "/random?count={}",
    "/products?minPrice={}",
    "/products?category={}",
]
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200)


@pytest.fixture(scope="module")
def client(fuzz_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fuzz_server.url, timeout=30) as http:
        yield http


def check(response: httpx.Response) -> None:
    label = f"{response.request.method} {response.request.url}"
    assert response.status_code < 500, (label, response.text[:500])
    if response.status_code == 307:  # `/users/` -> `/users`, as Express's loose routing
        location = response.headers["location"]
        assert response.request.url.path.endswith("/"), label
        assert location.rstrip("/") == str(response.request.url).split("?")[0].rstrip("/")
        return
    problems = envelope_problems(response)
    assert not problems, (label, problems)


@settings(max_examples=EXAMPLES * 4, deadline=None, suppress_health_check=list(HealthCheck))
@given(route=st.sampled_from(WRITES), body=BODIES, live=st.booleans())
def test_any_json_body_gets_an_envelope(
    client: httpx.Client, session_id: str, route: tuple[str, str], body: Any, live: bool
) -> None:
    method, path = route
    headers = {"Session-ID": session_id} if live else {}
    response = client.request(method, path, json=body, headers=headers)
    check(response)


@settings(max_examples=EXAMPLES * 2, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(max_size=300), content_type=st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "text/plain", "",
     "application/json; charset=latin-1", "application/vnd.api+json"]
))  # fmt: skip
def test_any_bytes_get_an_envelope(
    client: httpx.Client, session_id: str, raw: bytes, content_type: str
) -> None:
    headers = {"Session-ID": session_id}
    if content_type:
        headers["Content-Type"] = content_type
    check(client.put("/api/stateful/session", content=raw, headers=headers))
    check(client.post("/calculate", content=raw, headers=headers))


@settings(max_examples=EXAMPLES * 2, deadline=None, suppress_health_check=list(HealthCheck))
@given(session=HEADER_TEXT, request_id=HEADER_TEXT)
def test_any_header_values_get_an_envelope(
    client: httpx.Client, session: str, request_id: str
) -> None:
    headers = {"Session-ID": session.strip() or "x", "X-Request-ID": request_id.strip() or "x"}
    response = client.get("/api/stateful/cart", headers=headers)
    check(response)
    assert response.status_code == 401
    assert set(response.headers["x-request-id"]) <= set(
        string.ascii_letters + string.digits + "._-"
    )


@settings(max_examples=EXAMPLES * 2, deadline=None, suppress_health_check=list(HealthCheck))
@given(template=st.sampled_from(READS), segment=st.text(max_size=60))
def test_any_path_segment_gets_an_envelope(
    client: httpx.Client, session_id: str, template: str, segment: str
) -> None:
    path = template.format(quote(segment.encode("utf-8", "surrogatepass"), safe=""))
    method = "DELETE" if "/cart/remove/" in template else "GET"
    check(client.request(method, path, headers={"Session-ID": session_id}))
