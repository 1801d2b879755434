"""statebridge's CORS on raw headers sends what Starlette's CORSMiddleware sends.

The front writes the headers of an ordinary answer itself (it runs on every request);
Starlette's middleware, configured the same way, is the oracle."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from statebridge.asgi.cors import Cors

METHODS = ["GET", "POST", "PUT", "DELETE", "OPTIONS"]
ALLOWED = ["Content-Type", "Session-ID"]
EXPOSED = ["Session-ID", "X-Request-ID"]
ORIGINS = ["https://shop.example", "http://localhost:3000", "https://evil.example"]


def answer_with(extra: list[tuple[bytes, bytes]]):  # type: ignore[no-untyped-def]
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), *extra]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


async def starlette_headers(
    allow: list[str], origin: str | None, extra: list[tuple[bytes, bytes]]
) -> list[tuple[str, str]]:
    app = CORSMiddleware(
        answer_with(extra),
        allow_origins=allow,
        allow_credentials="*" not in allow,
        allow_methods=METHODS,
        allow_headers=ALLOWED,
        expose_headers=EXPOSED,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/", headers={"Origin": origin} if origin else {})
    return sorted(response.headers.multi_items())


def ours(
    allow: list[str], origin: str | None, extra: list[tuple[bytes, bytes]]
) -> list[tuple[str, str]]:
    headers = [(b"content-type", b"application/json"), *extra]
    Cors(allow, METHODS, ALLOWED, EXPOSED).apply(headers, origin.encode() if origin else None)
    return sorted((name.decode(), value.decode()) for name, value in headers)


@pytest.mark.parametrize("allow", [["*"], ["https://shop.example"], ORIGINS[:2]])
@pytest.mark.parametrize("origin", [None, *ORIGINS, "null"])
@pytest.mark.parametrize("extra", [[], [(b"vary", b"Accept-Encoding")]])
async def test_same_headers_as_starlette(
    allow: list[str], origin: str | None, extra: list[tuple[bytes, bytes]]
) -> None:
    assert ours(allow, origin, extra) == await starlette_headers(allow, origin, extra)


@settings(max_examples=60, deadline=None)
@given(
    allow=st.lists(st.sampled_from(["*", *ORIGINS]), min_size=1, max_size=3, unique=True),
    origin=st.one_of(
        st.none(), st.sampled_from(ORIGINS), st.from_regex(r"https?://[a-z]{1,8}", fullmatch=True)
    ),
)
async def test_any_policy_and_origin(allow: list[str], origin: str | None) -> None:
    assert ours(allow, origin, []) == await starlette_headers(allow, origin, [])


def test_preflight_is_starlettes_answer() -> None:
    cors = Cors(["https://shop.example"], METHODS, ALLOWED, EXPOSED)
    asked = [
        (b"origin", b"https://shop.example"),
        (b"access-control-request-method", b"POST"),
        (b"access-control-request-headers", b"session-id"),
    ]
    allowed = cors.preflight(asked)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    refused = cors.preflight([(b"origin", b"https://evil.example"), *asked[1:]])
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
