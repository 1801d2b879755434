"""/docs and /openapi.json on the combined face.

- /docs is Swagger UI from the package's own files (no CDN), with a policy of its own that
  allows its one inline script by hash; every other answer keeps the strict policy.
- /openapi.json is a valid OpenAPI 3 document whose bodies are named, typed models: each
  request body a `$ref` to a component with its required fields, each 200 an envelope with
  a typed `data`. (The browser test renders the page: tests/system/test_browser.py.)
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema_rs
import pytest
import schemathesis

from tests.support.servers import Server

STRICT_POLICY = (
    "default-src 'self';base-uri 'self';font-src 'self' https: data:;"
    "form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';"
    "script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';"
    "upgrade-insecure-requests"
)
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
# each route that reads a JSON body: its request model and the fields that model requires
BODIES = {
    ("post", "/calculate"): ("CalculateRequest", {"operation", "values"}),
    ("post", "/api/stateful/session"): ("CreateSession", {"userId"}),
    ("put", "/api/stateful/session"): ("UpdateSession", {"data"}),
    ("post", "/api/stateful/cart/add"): ("AddToCart", {"productId"}),
    ("put", "/api/stateful/profile/preferences"): ("Preferences", {"preferences"}),
    ("post", "/api/stateful/workflow/start"): ("WorkflowRequest", set()),
    ("post", "/api/stateful/workflow/next"): ("WorkflowRequest", set()),
}


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(env={}, data_dir=tmp_path_factory.mktemp("openapi")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def document(app_server: Server) -> dict[str, Any]:
    answer = httpx.get(f"{app_server.url}/openapi.json")
    assert answer.status_code == 200
    schema: dict[str, Any] = answer.json()
    return schema


# -- /docs --------------------------------------------------------------------------------


def test_docs_page_loads_its_assets_from_the_app(app_server: Server) -> None:
    page = httpx.get(f"{app_server.url}/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sorted(sources) == sorted(f"/docs/{name}" for name in ASSETS)  # nothing from afar
    for name, media_type in ASSETS.items():
        answer = httpx.get(f"{app_server.url}/docs/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"].startswith(media_type)
        assert len(answer.content) > 500
        # revalidated, not downloaded again
        again = httpx.get(
            f"{app_server.url}/docs/{name}", headers={"If-None-Match": answer.headers["etag"]}
        )
        assert again.status_code == 304
        assert again.content == b""
    assert b"SwaggerUIBundle" in httpx.get(f"{app_server.url}/docs/swagger-ui-bundle.js").content


def test_docs_policy_allows_its_inline_script_by_hash_only(app_server: Server) -> None:
    page = httpx.get(f"{app_server.url}/docs")
    policy = page.headers["content-security-policy"]
    directives = dict(part.split(" ", 1) for part in policy.split(";"))
    inline = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert directives["script-src"] == f"'self' 'sha256-{digest}'"
    assert "unsafe" not in directives["script-src"]
    assert directives["connect-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert "https:" not in policy
    assert page.headers.get_list("content-security-policy") == [policy]  # one policy, not two


def test_every_other_answer_keeps_the_strict_policy(app_server: Server) -> None:
    answers = [
        httpx.get(f"{app_server.url}/health"),
        httpx.get(f"{app_server.url}/openapi.json"),
        httpx.get(f"{app_server.url}/docs/swagger-ui-bundle.js"),
        httpx.get(f"{app_server.url}/docs/nope.js"),
        httpx.get(f"{app_server.url}/redoc"),
        httpx.post(f"{app_server.url}/calculate", json={}),
        httpx.get(f"{app_server.url}/api/stateful/session"),
    ]
    for answer in answers:
        assert answer.headers.get_list("content-security-policy") == [STRICT_POLICY], (
            answer.request.url
        )


def test_docs_are_on_the_combined_face_only(app_server: Server) -> None:
    for base in (app_server.stateless_url, app_server.stateful_url):
        for path in ("/docs", "/docs/swagger-ui.css", "/openapi.json"):
            answer = httpx.get(f"{base}{path}")
            assert answer.status_code == 404, path
            assert answer.json()["message"] == "Endpoint not found"
    for path in ("/docs/index.html", "/docs/..%2Fapp.py", "/redoc"):
        assert httpx.get(f"{app_server.url}{path}").status_code == 404, path


# -- /openapi.json ------------------------------------------------------------------------


def test_openapi_document_is_valid(app_server: Server, document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.")
    # against the OpenAPI meta-schema of the document's version (schemathesis ships them)
    loaded = schemathesis.openapi.from_dict(document)
    loaded.validate()
    broken = {**document, "paths": {"/calculate": {"post": {"responses": "none"}}}}
    with pytest.raises(Exception, match="none"):
        schemathesis.openapi.from_dict(broken).validate()
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert len(operations) >= 30


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = document["components"]["schemas"][name]
    return schema


def test_every_body_is_a_named_model_with_its_required_fields(document: dict[str, Any]) -> None:
    paths = document["paths"]
    with_body = {
        (method, path)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if "requestBody" in operation
    }
    # the stateful routes are also on their own face, without the prefix: not in this document
    assert with_body == {
        *BODIES,
        ("post", "/api/stateless/calculate"),
    }
    for (method, path), (model, required) in {
        **BODIES,
        ("post", "/api/stateless/calculate"): BODIES[("post", "/calculate")],
    }.items():
        schema = paths[path][method]["requestBody"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model}"}, (method, path)
        component = document["components"]["schemas"][model]
        assert set(component.get("required", [])) == required, model
        assert component["type"] == "object"
        assert set(required) <= set(component["properties"])
    calculate = document["components"]["schemas"]["CalculateRequest"]["properties"]
    assert calculate["operation"]["enum"] == ["add", "subtract", "multiply", "average"]
    assert calculate["values"]["type"] == "array"
    assert calculate["values"]["minItems"] == 1


def test_every_success_is_an_envelope_with_typed_data(document: dict[str, Any]) -> None:
    untyped = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
            envelope = resolve(document, ok)
            label = f"{method.upper()} {path}"
            assert set(envelope["required"]) == {"status", "message", "data", "timestamp"}, label
            data = envelope["properties"]["data"]
            if "$ref" not in data:
                untyped.append(label)
                continue
            typed = resolve(document, data)
            assert typed["type"] == "object" and typed["properties"], label
    assert untyped == []


def test_errors_are_documented_as_the_error_envelope(document: dict[str, Any]) -> None:
    calculate = document["paths"]["/calculate"]["post"]["responses"]
    assert "422" not in calculate  # FastAPI's default; the app answers 400 in the envelope
    error = resolve(document, calculate["400"]["content"]["application/json"]["schema"])
    assert set(error["required"]) == {"status", "message", "errors", "timestamp"}
    session = document["paths"]["/api/stateful/session"]["get"]["responses"]
    assert "401" in session
    for operations in document["paths"].values():
        for operation in operations.values():
            assert "422" not in operation["responses"]


def test_real_answers_match_their_documented_schemas(
    app_server: Server, document: dict[str, Any]
) -> None:
    """Each route called for real: its 200 body validates against the documented schema."""

    def validator(path: str, method: str, status: str = "200") -> Any:
        content = document["paths"][path][method]["responses"][status]["content"]
        root = {**content["application/json"]["schema"], "components": document["components"]}
        return jsonschema_rs.Draft202012Validator(root)

    calls: list[tuple[str, str, httpx.Response]] = []
    with httpx.Client(base_url=app_server.url, timeout=15) as http:

        def call(method: str, route: str, url: str = "", **options: Any) -> httpx.Response:
            answer = http.request(method, url or route, **options)
            calls.append((method.lower(), route, answer))
            return answer

        session = call("POST", "/api/stateful/session", json={"userId": "user001"})
        live = {"headers": {"Session-ID": session.headers["Session-ID"]}}
        call("POST", "/calculate", json={"operation": "add", "values": [1, 2.5]})
        call("GET", "/random", "/random?count=3&type=string")
        call("GET", "/products", "/products?minPrice=10")
        call("GET", "/users/{user_id}", "/users/user001")
        for route in ("/users", "/info", "/health", "/demonstrate/stateless", "/compare/stateful"):
            call("GET", route)
        for route in ("/health/live", "/health/ready", "/api/stateful/health"):
            call("GET", route)
        call("GET", "/api/stateful/info", **live)
        call("PUT", "/api/stateful/session", json={"data": {"a": 1}}, **live)
        cart_line = {"productId": "prod001", "quantity": 2}
        call("POST", "/api/stateful/cart/add", json=cart_line, **live)
        call("GET", "/api/stateful/cart", **live)
        remove = "/api/stateful/cart/remove/{product_id}"
        call("DELETE", remove, remove.format(product_id="prod001"), **live)
        call("DELETE", "/api/stateful/cart", **live)
        preferences = {"preferences": {"theme": "dark"}}
        call("PUT", "/api/stateful/profile/preferences", json=preferences, **live)
        call("GET", "/api/stateful/profile", **live)
        call("GET", "/api/stateful/demonstrate/stateful", **live)
        call("POST", "/api/stateful/workflow/start", **live)
        for _ in range(4):  # three steps, then the completion
            call("POST", "/api/stateful/workflow/next", **live)
        call("GET", "/api/stateful/session", **live)
        call("GET", "/api/stateful/session/siblings", **live)
        for _ in range(2):  # two other sessions of the user: one ended by hint, one by all
            http.post("/api/stateful/session", json={"userId": "user001"})
        others = http.get("/api/stateful/session/siblings", **live).json()["data"]["sessions"]
        hint = next(sibling["hint"] for sibling in others if not sibling["current"])
        one = "/api/stateful/session/siblings/{hint}"
        call("DELETE", one, one.format(hint=hint), **live)
        call("DELETE", "/api/stateful/session/siblings", **live)
        renewed = call("POST", "/api/stateful/session/regenerate", **live)
        live = {"headers": {"Session-ID": renewed.headers["Session-ID"]}}
        call("DELETE", "/api/stateful/session", **live)
        refused = http.get("/api/stateful/session", **live)
    assert {(method, path) for method, path, _ in calls} >= {
        (method, path)
        for path, operations in document["paths"].items()
        for method in operations
        if not path.startswith("/api/stateless")
    }
    for method, path, answer in calls:
        assert answer.status_code == 200, (method, path, answer.text)
        errors = [str(e) for e in validator(path, method).iter_errors(answer.json())]
        assert errors == [], (method, path, errors)
    assert refused.status_code == 401
    assert validator("/api/stateful/session", "get", "401").is_valid(refused.json())
