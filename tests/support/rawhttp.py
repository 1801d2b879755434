"""HTTP/1.1 on raw loopback sockets, for what httpx will not send: broken framing, smuggling
shapes, pipelined requests, slow clients. Answers are read back as httpx.Response objects
(Content-Length framed, as every statebridge, Granian, uvicorn and nginx answer is), and the
server's own log says what the app saw."""

from __future__ import annotations

import itertools
import json
import socket
import time
from dataclasses import dataclass

import httpx

from tests.support.servers import Server

_ids = itertools.count()


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def split_answers(raw: bytes) -> tuple[list[httpx.Response], bytes]:
    """The complete answers at the start of `raw`, and what follows them (an answer still
    arriving, or nothing)."""
    answers: list[httpx.Response] = []
    while raw:
        head, separator, rest = raw.partition(b"\r\n\r\n")
        if not separator:
            break
        status_line, *lines = head.decode("latin-1").split("\r\n")
        fields = (line.split(":", 1) for line in lines)
        headers = [(name.strip(), value.strip()) for name, value in fields]
        length = int({name.lower(): value for name, value in headers}["content-length"])
        if len(rest) < length:
            break
        status = int(status_line.split()[1])
        answers.append(httpx.Response(status, headers=headers, content=rest[:length]))
        raw = rest[length:]
    return answers, raw


def parse(raw: bytes) -> httpx.Response:
    """One HTTP/1.1 answer, and nothing after it."""
    answers, rest = split_answers(raw)
    assert len(answers) == 1 and not rest, f"more than one answer on the connection: {raw!r:.600}"
    return answers[0]


def send_raw(port: int, data: bytes) -> httpx.Response:
    """Send `data`, read until the server closes: exactly one answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        return parse(read_all(sock))


@dataclass
class Exchange:
    answers: list[httpx.Response]
    closed: bool  # the server closed the connection
    rest: bytes  # bytes after the last complete answer (none from a well-behaved server)


def exchange(port: int, data: bytes, expect: int = 1, linger: float = 0.2) -> Exchange:
    """Send `data` on a new connection and read until the server closes it, or `expect`
    answers have come and nothing more arrives for `linger` seconds (an answer too many,
    such as one to a smuggled request, would arrive then)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        raw = b""
        deadline = time.monotonic() + 10
        while True:
            answers, rest = split_answers(raw)
            if len(answers) >= expect and not rest:
                sock.settimeout(linger)
            else:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return Exchange(answers, closed=False, rest=rest)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                answers, rest = split_answers(raw)
                return Exchange(answers, closed=True, rest=rest)
            raw += chunk


def new_request_id(label: str) -> str:
    return f"raw-{label}-{next(_ids)}-{time.monotonic_ns()}"


def access_status(server: Server, request_id: str, timeout: float = 5.0) -> int | None:
    """The status in the access-log line of `request_id` (None if it never reached the app)."""
    deadline = time.monotonic() + timeout
    while True:
        for line in server.log().splitlines():
            if request_id in line and '"statebridge.access"' in line:
                status: int = json.loads(line)["status"]
                return status
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)


def access_statuses(text: str) -> list[int]:
    """Every status in the access-log lines of `text`."""
    return [
        json.loads(line)["status"] for line in text.splitlines() if '"statebridge.access"' in line
    ]


def errors_logged(text: str) -> list[str]:
    return [
        line
        for line in text.splitlines()
        if '"level":"error"' in line or '"level":"critical"' in line or "Traceback" in line
    ]
