"""The Phase 1 response envelopes and the errors that produce the error one."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from statebridge.timeutil import js_now

FieldError = dict[str, str]


class JSONResponse(Response):
    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ApiError(Exception):
    """An error that becomes `{"status":"error","message":...,"errors":[...]}`."""

    def __init__(
        self,
        status_code: int,
        message: str,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.errors = errors or []
        self.headers = headers


def validation_error(field: str, message: str) -> ApiError:
    return ApiError(400, "Validation failed", [{"field": field, "message": message}])


def success(data: dict[str, Any], message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"status": "success", "message": message, "data": data, "timestamp": js_now()}
    return JSONResponse(body, headers=headers)


def error_body(message: str, errors: list[FieldError] | None = None) -> dict[str, Any]:
    return {"status": "error", "message": message, "errors": errors or [], "timestamp": js_now()}


def error(status_code: int, message: str, errors: list[FieldError] | None = None) -> Response:
    return JSONResponse(error_body(message, errors), status_code=status_code)
