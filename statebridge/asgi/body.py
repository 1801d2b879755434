"""Reading request bodies the way Phase 1 should have: bounded, strict, never a 500."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import ClientDisconnect, Request

from statebridge.envelope import ApiError, validation_error

JSON_TYPES = ("application/json", "text/json")


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "Request body too large", [{"field": "body", "message": f"limit {limit}"}])


def _incomplete() -> ApiError:
    return ApiError(
        400,
        "Incomplete request body",
        [{"field": "body", "message": "The body ended early or its chunked framing is invalid"}],
    )


async def read_raw(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise _too_large(limit)
        except ValueError:
            raise ApiError(400, "Invalid Content-Length header") from None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        # Granian ends a body it cannot parse (a bad chunk size, chunk data cut short) as
        # if the client had gone, and answers a plain 500 when the app then sends nothing.
        # The connection may still be open: answer 400 (as nginx does for a body that ends
        # early); where the client really went, uvicorn and Granian drop the answer.
        raise _incomplete() from None
    return b"".join(chunks)


def depth_exceeds(value: Any, limit: int) -> bool:
    """True when containers nest deeper than `limit` (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def has_nul(value: Any) -> bool:
    """True when a string or key anywhere in `value` holds U+0000, which PostgreSQL's text
    and jsonb cannot store (it would surface as a 500 instead of a 400)."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


async def read_object(request: Request, limit: int, max_depth: int) -> dict[str, Any]:
    """The body as a JSON object; empty and `null` count as `{}`."""
    raw = await read_raw(request, limit)
    if not raw.strip():
        return {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        try:
            form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise validation_error("body", "Body is not valid UTF-8") from None
        if has_nul(form):
            raise validation_error("body", "Text must not contain NUL characters")
        return form
    if content_type and not (content_type in JSON_TYPES or content_type.endswith("+json")):
        raise ApiError(
            415,
            "Unsupported content type",
            [{"field": "content-type", "message": "Send application/json"}],
        )
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise validation_error("body", "Malformed JSON") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise validation_error("body", "Body must be a JSON object")
    if depth_exceeds(value, max_depth):
        raise validation_error("body", f"JSON nested deeper than {max_depth} levels")
    if has_nul(value):
        raise validation_error("body", "Text must not contain NUL characters")
    return value


def require_fields(body: dict[str, Any], *names: str) -> None:
    """Phase 1's `validateRequestBody`: undefined or null counts as missing."""
    missing = [name for name in names if body.get(name) is None]
    if missing:
        raise validation_error("body", f"Missing required fields: {', '.join(missing)}")
