"""Phase 1's response envelope, checked on every answer the tests read.

The templates and their checker are the package's (`statebridge check` uses the same):
`assert_matches` holds a document against a template, `success_data` and `assert_error`
hold a whole answer against the success or the error envelope.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from statebridge.ops.contract.shapes import problems
from statebridge.ops.contract.table import VALIDATION_ERRORS, failure, success

LEAKS = re.compile(
    r"Traceback \(most recent|File \"/|sqlalchemy|asyncpg|psycopg|\[SQL:|redis\.exceptions",
    re.IGNORECASE,
)


def envelope_problems(response: httpx.Response) -> list[str]:
    """What is wrong with a response's envelope (empty when it is a proper one)."""
    problems: list[str] = []
    if not response.headers.get("x-instance-id"):
        problems.append("no X-Instance-ID header")
    if not response.headers.get("content-type", "").startswith("application/json"):
        problems.append(f"content-type {response.headers.get('content-type')!r}")
    if LEAKS.search(response.text):
        problems.append(f"internals leak: {response.text[:300]}")
    try:
        body = response.json()
    except ValueError:
        return [*problems, f"not JSON: {response.text[:200]!r}"]
    if not isinstance(body, dict):
        return [*problems, f"not an object: {body!r:.200}"]
    if not isinstance(body.get("message"), str) or not isinstance(body.get("timestamp"), str):
        problems.append(f"message/timestamp missing: {body!r:.200}")
    if response.status_code < 400:
        if body.get("status") != "success" or not isinstance(body.get("data"), dict):
            problems.append(f"not a success envelope: {body!r:.200}")
    else:
        errors = body.get("errors")
        if body.get("status") != "error" or not isinstance(errors, list):
            problems.append(f"not an error envelope: {body!r:.200}")
        elif not all(
            isinstance(item, dict)
            and isinstance(item.get("field"), str)
            and isinstance(item.get("message"), str)
            for item in errors
        ):
            problems.append(f"malformed errors list: {errors!r:.200}")
    return problems


def assert_envelope(response: httpx.Response, status: int | None = None) -> dict[str, Any]:
    problems = envelope_problems(response)
    assert not problems, problems
    if status is not None:
        assert response.status_code == status, response.text[:500]
    body: dict[str, Any] = response.json()
    return body


def assert_matches(template: Any, actual: Any) -> None:
    found = problems(template, actual)
    assert not found, "response departs from the contract:\n  " + "\n  ".join(found)


def success_data(response: Any, message: str, status_code: int = 200) -> Any:
    """The `data` of a Phase 1 success envelope, after checking the envelope itself."""
    assert response.status_code == status_code, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert_matches(success(message), body)
    assert set(body) == {"status", "message", "data", "timestamp"}, sorted(body)
    return body["data"]


def assert_error(
    response: Any, status_code: int, message: str, errors: list[dict[str, str]] | None = None
) -> list[Any]:
    """Check a Phase 1 error envelope; `errors`, when given, must be exactly that list."""
    assert response.status_code == status_code, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert_matches(failure(message), body)
    assert set(body) == {"status", "message", "errors", "timestamp"}, sorted(body)
    if body["errors"]:
        assert_matches(VALIDATION_ERRORS, body["errors"])
    if errors is not None:
        assert body["errors"] == errors
    seen: list[Any] = body["errors"]
    return seen
