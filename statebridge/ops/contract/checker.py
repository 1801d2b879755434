"""The machinery of `statebridge check`: send a request, hold the answer against a row.

A row never raises: a refused connection, a non-JSON body or a surprising document all
become problems on that row, and the run goes on to the end.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from statebridge.ops.contract.locate import Side
from statebridge.ops.contract.shapes import ARRAY, OBJECT, STRING, problems
from statebridge.ops.contract.table import failure, success

NO_BODY = object()
ORIGIN = "http://check.example"
Extra = Callable[["Reply"], list[str]]
Status = int | tuple[int, ...]


@dataclass
class Reply:
    """What came back: status, headers and the decoded body (or why nothing did)."""

    status: int = 0
    headers: httpx.Headers = field(default_factory=httpx.Headers)
    body: Any = None
    text: str = ""
    failure: str = ""

    @property
    def data(self) -> dict[str, Any]:
        """`data` of a success envelope, or {} (so a scenario can read on after a failure)."""
        data = self.body.get("data") if isinstance(self.body, dict) else None
        return data if isinstance(data, dict) else {}

    def summary(self) -> str:
        if self.failure:
            return self.failure
        message = self.body.get("message") if isinstance(self.body, dict) else None
        return f"{self.status} {message if message is not None else self.text[:40]!s}".strip()


@dataclass
class Row:
    """One line of the table: a contract promise and whether the server kept it."""

    number: int
    side: Side
    title: str
    request: str
    expected: str
    got: str
    p2: bool
    problems: list[str]

    @property
    def passed(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "side": self.side,
            "title": self.title,
            "request": self.request,
            "expected": self.expected,
            "got": self.got,
            "p2": self.p2,
            "passed": self.passed,
            "problems": self.problems,
        }


class Checker:
    """Sends the scenario's requests to the two base URLs and records one Row per promise."""

    def __init__(self, http: httpx.AsyncClient, stateless_url: str, stateful_url: str) -> None:
        self.http = http
        self.bases: dict[Side, str] = {"stateless": stateless_url, "stateful": stateful_url}
        self.rows: list[Row] = []

    async def send(
        self,
        side: Side,
        method: str,
        path: str,
        *,
        body: Any = NO_BODY,
        raw: bytes | None = None,
        session: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if session is not None:
            sent["Session-ID"] = session
        content = raw
        if body is not NO_BODY:
            content = json.dumps(body).encode()
        if content is not None:
            sent.setdefault("Content-Type", "application/json")
        try:
            response = await self.http.request(
                method, self.bases[side] + path, content=content, headers=sent
            )
        except httpx.HTTPError as exc:
            return Reply(failure=f"no answer: {type(exc).__name__} {exc}".strip())
        try:
            parsed = response.json()
        except ValueError:
            parsed = None
        return Reply(response.status_code, response.headers, parsed, response.text)

    def record(
        self,
        side: Side,
        title: str,
        request: str,
        expected: str,
        reply: Reply,
        found: list[str],
        p2: bool = False,
    ) -> Row:
        row = Row(len(self.rows) + 1, side, title, request, expected, reply.summary(), p2, found)
        self.rows.append(row)
        return row

    async def row(
        self,
        side: Side,
        title: str,
        method: str,
        path: str,
        *,
        status: Status,
        message: Any = None,
        data: Any = None,
        errors: Any = None,
        p2: bool = False,
        extra: Extra | None = None,
        envelope: bool = True,
        **request: Any,
    ) -> Reply:
        """Send one request and check status, envelope, message, `data`/`errors` and `extra`."""
        reply = await self.send(side, method, path, **request)
        self.judge(
            side, title, f"{method} {path}", reply, status, message, data, errors, p2, extra,
            envelope,
        )  # fmt: skip
        return reply

    def judge(
        self,
        side: Side,
        title: str,
        request: str,
        reply: Reply,
        status: Status,
        message: Any = None,
        data: Any = None,
        errors: Any = None,
        p2: bool = False,
        extra: Extra | None = None,
        envelope: bool = True,
    ) -> Row:
        """Hold an existing reply against a promise (several rows may share one request)."""
        codes = status if isinstance(status, tuple) else (status,)
        shown = "/".join(str(code) for code in codes)
        expected = f"{shown} {message}" if isinstance(message, str) else shown
        found = envelope_problems(reply, codes, message, data, errors, envelope)
        if extra is not None and not reply.failure:
            try:
                found += extra(reply)
            except Exception as exc:  # a malformed answer must not stop the run
                found.append(f"cannot read the answer: {type(exc).__name__}: {exc}")
        return self.record(side, title, request, expected, reply, found, p2)


def envelope_problems(
    reply: Reply,
    codes: tuple[int, ...],
    message: Any,
    data: Any,
    errors: Any,
    envelope: bool = True,
) -> list[str]:
    """The status, then the whole envelope: success with `data`, or error with `errors`."""
    if reply.failure:
        return [reply.failure]
    found: list[str] = []
    if reply.status not in codes:
        found.append(f"status: expected {' or '.join(map(str, codes))}, got {reply.status}")
    if not envelope:
        return found
    if reply.body is None:
        return [*found, f"body is not JSON: {reply.text[:80]!r}"]
    text = STRING if message is None else message
    if codes[0] < 400:
        template = success(text, OBJECT if data is None else data)
    else:
        template = failure(text, ARRAY if errors is None else errors)
    return found + problems(template, reply.body, "body")


def need(condition: bool, problem: str) -> list[str]:
    return [] if condition else [problem]


def header_problems(reply: Reply, wanted: dict[str, str | None]) -> list[str]:
    found = []
    for name, value in wanted.items():
        actual = reply.headers.get(name)
        if actual is None:
            found.append(f"header {name}: missing")
        elif value is not None and actual.lower() != value:
            found.append(f"header {name}: expected {value!r}, got {actual!r}")
    return found


def listed(header: str | None, name: str) -> bool:
    return name.lower() in [part.strip().lower() for part in (header or "").split(",")]
