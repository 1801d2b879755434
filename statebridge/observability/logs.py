"""Structured logs: one JSON object per line, on stderr for events, stdout for requests.

The access log is written by hand (orjson) rather than through `logging`: no record objects,
no handler lock. Lines written in the same event-loop turn go out together at the end of
the turn, in `os.write` calls of whole lines and at most PIPE_BUF bytes each, so lines of
forked workers sharing one pipe never interleave; one write per request was a large share
of a small GET's time (docs/perf-history.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import warnings
from datetime import UTC, datetime
from typing import Any

import orjson

from statebridge.observability.requests import CURRENT_REQUEST_ID
from statebridge.timeutil import js_now

STDOUT = 1
PIPE_BUF = 4096  # POSIX: a pipe write up to this size is atomic
WARNINGS = "py.warnings"  # the logger `logging.captureWarnings` writes Python warnings to


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", "requestId"?, "instance"?, "error"?}` on one
    line; `requestId` when the event was logged while a request was being answered (the
    same id as its access line and its X-Request-ID header).

    An exception becomes its type and message under `error` plus the traceback under
    `traceback`: logs may hold what responses never do. A Python warning (logger
    `py.warnings`) becomes `CATEGORY: text` with the code that raised it under `source`."""

    def __init__(self, instance_id: str = "") -> None:
        super().__init__()
        self.instance_id = instance_id

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        warning = getattr(record, "warning", None)
        if record.name == WARNINGS and isinstance(warning, dict):
            entry["message"] = f"{warning['category']}: {warning['text']}"
            entry["source"] = f"{warning['file']}:{warning['line']}"
        elif record.name == WARNINGS:  # the stock captureWarnings text, and its source line
            entry["message"] = entry["message"].strip()
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):  # an event's own fields (observability/sessions.py)
            entry.update({key: value for key, value in fields.items() if key not in entry})
        request_id = CURRENT_REQUEST_ID.get()
        if request_id is not None:
            entry["requestId"] = request_id
        if self.instance_id:
            entry["instance"] = self.instance_id
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def stderr_handler(log_format: str, instance_id: str = "") -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(instance_id))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return handler


def show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """`warnings.showwarning` once warnings are captured: a `py.warnings` log record that
    keeps the category and the source apart, for the JSON formatter."""
    if file is not None:  # to a file of the caller's choosing: Python's own text
        with contextlib.suppress(OSError):
            file.write(warnings.formatwarning(message, category, filename, lineno, line))
        return
    text = str(message)
    details = {"category": category.__name__, "text": text, "file": filename, "line": lineno}
    logging.getLogger(WARNINGS).warning(
        "%s: %s", category.__name__, text, extra={"warning": details}
    )


def route_warnings() -> None:
    """Python warnings become log records of `py.warnings` (logging.captureWarnings), with
    the category and source kept apart."""
    logging.captureWarnings(True)
    warnings.showwarning = show_warning


def capture_warnings(log_format: str) -> None:
    """For a command that logs nothing else: Python warnings go to stderr in the log format,
    one line each, instead of Python's free text. `configure` takes them over later."""
    logger = logging.getLogger(WARNINGS)
    logger.handlers.clear()
    logger.addHandler(stderr_handler(log_format))
    logger.propagate = False
    route_warnings()


def configure(level: str, log_format: str, instance_id: str = "") -> None:
    """Route every logger (uvicorn's too: it propagates to the root) to one stderr handler,
    and Python warnings through it as well."""
    handler = stderr_handler(log_format, instance_id)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", WARNINGS):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    route_warnings()


class AccessLog:
    """Writes one line per answered request."""

    def __init__(self, instance_id: str, fd: int = STDOUT) -> None:
        self.instance_id = instance_id
        self.fd = fd
        self._pending: list[bytes] = []

    def write(
        self,
        request_id: str,
        method: str,
        route: str,
        status: int,
        seconds: float,
        has_session: bool,
        client: str = "",
        scheme: str = "http",
    ) -> None:
        """`client` and `scheme` are the proxy's view when it is trusted
        (STATEBRIDGE_FORWARDED_ALLOW_IPS), the socket's otherwise."""
        line = orjson.dumps(
            {
                "ts": js_now(),
                "level": "info",
                "logger": "statebridge.access",
                "requestId": request_id,
                "method": method,
                "route": route,
                "status": status,
                "durationMs": round(seconds * 1000, 3),
                "session": has_session,
                "client": client,
                "scheme": scheme,
                "instance": self.instance_id,
            },
            option=orjson.OPT_APPEND_NEWLINE,
        )
        if not self._pending:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no event loop: write at once
                self._write(line)
                return
        self._pending.append(line)

    def flush(self) -> None:
        """Write the lines waiting, whole, in writes of at most PIPE_BUF bytes."""
        lines, self._pending = self._pending, []
        chunk = b""
        for line in lines:
            if chunk and len(chunk) + len(line) > PIPE_BUF:
                self._write(chunk)
                chunk = b""
            chunk += line
        if chunk:
            self._write(chunk)

    def _write(self, data: bytes) -> None:
        with contextlib.suppress(OSError):  # a closed log pipe must not fail the request
            os.write(self.fd, data)
