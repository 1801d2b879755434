"""Security: server-made session ids, the optional session cookie, CORS, production settings
that refuse defaulted secrets, and responses that never show internals."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from statebridge.config import Settings
from tests.support.envelope import LEAKS, assert_envelope
from tests.support.servers import Server, clean_env, free_port

UUID4 = "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(env={}, data_dir=tmp_path_factory.mktemp("security-plain")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cookies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "STATEBRIDGE_SESSION_COOKIE": "on",
        "STATEBRIDGE_CORS_ORIGINS": "https://app.example, https://admin.example",
    }
    server = Server(env=env, data_dir=tmp_path_factory.mktemp("security-cookies")).start()
    yield server
    server.stop()


# -- session ids ----------------------------------------------------------------------------------


def test_session_ids_are_server_made_uuid4s(plain: Server) -> None:
    import re

    chosen = str(uuid.uuid4())
    ids = set()
    for _ in range(40):
        response = httpx.post(
            f"{plain.stateful_url}/session",
            json={"userId": "user001", "id": chosen, "sessionId": chosen, "data": {"id": chosen}},
            headers={"Session-ID": chosen},
        )
        body = assert_envelope(response, 200)
        session_id = response.headers["Session-ID"]
        assert body["data"]["session"]["id"] == session_id
        assert re.match(UUID4, session_id), session_id
        assert session_id != chosen
        ids.add(session_id)
    assert len(ids) == 40
    # the id the client made up names nothing
    response = httpx.get(f"{plain.stateful_url}/session", headers={"Session-ID": chosen})
    assert assert_envelope(response, 401)["message"] == "Session not found or expired"


def test_without_the_cookie_setting_a_cookie_is_no_session(plain: Server) -> None:
    created = httpx.post(f"{plain.stateful_url}/session", json={"userId": "user001"})
    assert "set-cookie" not in created.headers
    session_id = created.headers["Session-ID"]
    response = httpx.get(
        f"{plain.stateful_url}/session", headers={"Cookie": f"session_id={session_id}"}
    )
    assert assert_envelope(response, 401)["message"] == "Valid session required"


def test_the_session_cookie_is_set_used_and_cleared(cookies: Server) -> None:
    for base in (cookies.stateful_url, f"{cookies.url}/api/stateful"):
        created = httpx.post(f"{base}/session", json={"userId": "user002"})
        assert_envelope(created, 200)
        session_id = created.headers["Session-ID"]  # the header transport stays
        set_cookie = created.headers["set-cookie"]
        attributes = [part.strip().lower() for part in set_cookie.split(";")]
        assert attributes[0] == f"session_id={session_id}"
        assert "httponly" in attributes
        assert "secure" in attributes
        assert "samesite=lax" in attributes
        assert "path=/" in attributes
        cookie = {"Cookie": f"session_id={session_id}"}
        body = assert_envelope(httpx.get(f"{base}/session", headers=cookie), 200)
        assert body["data"]["session"]["id"] == session_id
        assert_envelope(httpx.get(f"{base}/cart", headers=cookie), 200)
        # the header wins over the cookie
        other = httpx.post(f"{base}/session", json={"userId": "user001"}).headers["Session-ID"]
        both = {**cookie, "Session-ID": other}
        assert httpx.get(f"{base}/session", headers=both).json()["data"]["session"]["id"] == other
        deleted = httpx.delete(f"{base}/session", headers=cookie)
        assert_envelope(deleted, 200)
        cleared = deleted.headers["set-cookie"].lower()
        assert cleared.startswith('session_id="";') or cleared.startswith("session_id=;")
        assert "max-age=0" in cleared
        assert_envelope(httpx.get(f"{base}/session", headers=cookie), 401)


def test_an_absurd_cookie_is_401(cookies: Server) -> None:
    for value in ("*", "x" * 5000, "' OR 1=1 --", "session:*"):
        response = httpx.get(
            f"{cookies.stateful_url}/session", headers={"Cookie": f"session_id={value}"}
        )
        assert assert_envelope(response, 401)["message"] == "Session not found or expired"


# -- CORS -----------------------------------------------------------------------------------------


def test_cors_defaults_to_any_origin_without_credentials(plain: Server) -> None:
    response = httpx.get(f"{plain.url}/health", headers={"Origin": "https://evil.example"})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


def test_cors_allows_only_the_configured_origins_with_credentials(cookies: Server) -> None:
    allowed = httpx.get(f"{cookies.url}/health", headers={"Origin": "https://app.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    exposed = allowed.headers["access-control-expose-headers"].lower()
    assert "session-id" in exposed and "x-request-id" in exposed
    refused = httpx.get(f"{cookies.url}/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in refused.headers
    preflight = httpx.options(
        f"{cookies.url}/api/stateful/session",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "DELETE",
        },
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers


# -- no internals in responses --------------------------------------------------------------------


def test_errors_show_no_internals(plain: Server) -> None:
    requests = [
        ("POST", "/calculate", b"{bad"),
        ("POST", "/calculate", b'{"operation": "x", "values": [1]}'),
        ("GET", "/users/%00", None),
        ("GET", "/users/' UNION SELECT * FROM users --", None),
        ("GET", "/no/such/route", None),
        ("PUT", "/api/stateful/session", b'{"data": [1]}'),
        ("POST", "/api/stateful/cart/add", b'{"productId": "prod001", "quantity": "x"}'),
        ("DELETE", "/health", None),
    ]
    for method, path, body in requests:
        response = httpx.request(
            method, f"{plain.url}{path}", content=body, headers={"Content-Type": "application/json"}
        )
        assert 400 <= response.status_code < 500, (path, response.status_code)
        assert not LEAKS.search(response.text), response.text
        assert "Traceback" not in response.text
        assert_envelope(response)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "SAMEORIGIN"


def test_debug_is_off_by_default() -> None:
    assert Settings(_env_file=None).debug is False  # type: ignore[call-arg]
    assert Settings(_env_file=None).env == "development"  # type: ignore[call-arg]


# -- production settings --------------------------------------------------------------------------

UNREACHABLE_PG = f"postgresql://statebridge:secret@127.0.0.1:{free_port()}/statebridge"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "production needs DATABASE_URL (PostgreSQL with a password)"),
        (
            {"DATABASE_URL": "postgresql://statebridge@127.0.0.1:1/statebridge"},
            "production refuses a DATABASE_URL without a password",
        ),
        (
            {"DATABASE_URL": UNREACHABLE_PG, "REDIS_URL": "redis://127.0.0.1:1/0"},
            "production refuses a REDIS_URL without a password",
        ),
        (
            {"DATABASE_URL": UNREACHABLE_PG, "STATEBRIDGE_SESSION_COOKIE": "on"},
            "production refuses STATEBRIDGE_CORS_ORIGINS=* with cookie sessions",
        ),
        (
            {"DATABASE_URL": UNREACHABLE_PG, "DEBUG": "true"},
            "production refuses DEBUG on",
        ),
        (
            {"DATABASE_URL": UNREACHABLE_PG},
            "production needs STATEBRIDGE_SESSION_SECRET (32 characters or more)",
        ),
        (
            {"DATABASE_URL": UNREACHABLE_PG, "STATEBRIDGE_SESSION_SECRET": "short"},
            "production needs STATEBRIDGE_SESSION_SECRET (32 characters or more)",
        ),
    ],
    ids=[
        "no-database",
        "db-no-password",
        "redis-no-password",
        "cookie-wildcard",
        "debug",
        "no-session-secret",
        "short-session-secret",
    ],
)
def test_production_refuses_defaulted_secrets(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "statebridge", "serve", "--port", str(free_port()),
         "--stateless-port", "0", "--stateful-port", "0"],
        env=clean_env({"STATEBRIDGE_ENV": "production", "STATEBRIDGE_DATA_DIR": str(tmp_path),
                       **env}),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert lines[-1] == f"statebridge: {expected}", result.stderr
    assert "Traceback" not in result.stderr
    assert "secret" not in result.stderr


def test_production_accepts_proper_settings() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="production",
        database_url="postgresql://statebridge:secret@db:5432/statebridge",
        redis_url="redis://:secret@redis:6379/0",
        session_cookie=True,
        cors_origins="https://app.example",  # type: ignore[arg-type]
        session_secret="a-session-secret-of-32-characters",  # type: ignore[arg-type]
    )
    assert settings.production_problem() is None
