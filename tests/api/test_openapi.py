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

import httpx
import pytest

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


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(env={}, data_dir=tmp_path_factory.mktemp("openapi")).start()
    yield running
    running.stop()


# -- /docs --------------------------------------------------------------------------------


def test_docs_page_loads_its_assets_from_the_app(app_server: Server) -> None:
    page = httpx.get(f"{app_server.url}/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sorted(sources) == sorted(
        f"/docs/{name}" for name in ASSETS
    )  # nothing from afar
    for name, media_type in ASSETS.items():
        answer = httpx.get(f"{app_server.url}/docs/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"].startswith(media_type)
        assert len(answer.content) > 500
        # revalidated, not downloaded again
        again = httpx.get(
            f"{app_server.url}/docs/{name}",
            headers={"If-None-Match": answer.headers["etag"]},
        )
        assert again.status_code == 304
        assert again.content == b""
    assert (
        b"SwaggerUIBundle"
        in httpx.get(f"{app_server.url}/docs/swagger-ui-bundle.js").content
    )


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
    assert page.headers.get_list("content-security-policy") == [
        policy
    ]  # one policy, not two


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
