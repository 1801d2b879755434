"""Every use of a third-party API that is not public, fenced in one place.

Granian's embedded server binds its own socket; statebridge binds first (a busy port fails
fast, forked workers share one listener) and hands Granian a duplicate of the listener. That
leans on Granian internals: `granian._granian.SocketHolder` and the attributes that
`embed.Server._init_shared_socket` sets (`_shd`, `_sfd`, `_ssp`). pyproject.toml bounds
Granian to a tested range, and tests/unit/test_private_apis.py fails loudly when an upgrade
changes any of them.

uvicorn's HTTP protocol answers a request its parser refuses (a malformed request line,
header or chunk) with a plain-text 400 written straight to the socket, before and outside
the app. `uvicorn_envelope_protocol` subclasses that protocol so the 400 carries the error
envelope every other answer has; it overrides `send_400_response` and reads
`server_state.default_headers` and `transport`, which the upgrade test checks. uvicorn sets
no limit on a request's header lines either; the subclass refuses more than
`MAX_HEADER_LINES` of them, or more than `MAX_HEADER_BYTES` in all, with a 431 in the
envelope, as Granian does (and stops reading a head past `MAX_HEAD_BYTES` as sent).

Typer has no public name for its shell-completion classes and scripts either; the command
line's `completion` uses them through the two functions at the end.

pyproject.toml bounds every package used here (granian, uvicorn, typer) to the tested minor
releases; tests/unit/test_private_apis.py checks that each has its upper bound.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import orjson

from statebridge.envelope import error_body

# what the subclass below overrides or sets, checked by the upgrade test
GRANIAN_SERVER_INTERNALS = ("_init_shared_socket", "_shd", "_sfd", "_ssp")


def granian_bound_server_class() -> Any:
    """Granian's embedded server, serving on a socket bound elsewhere."""
    from granian._granian import SocketHolder
    from granian.server import embed

    holder: Any = SocketHolder  # its stub leaves out the constructor
    base: Any = embed.Server

    class BoundServer(base):  # type: ignore[misc]
        """Granian's embedded server on a socket bound elsewhere."""

        def __init__(self, sock: socket.socket, **options: Any) -> None:
            self.bound_fd = sock.fileno()
            super().__init__(**options)

        def _init_shared_socket(self) -> None:
            self._shd = holder(os.dup(self.bound_fd), False, self.backlog)
            self._sfd = self._shd.get_fd()
            self._ssp = None

    return BoundServer


# what the uvicorn subclass overrides or reads, checked by the upgrade test
UVICORN_PROTOCOL_INTERNALS = (
    "send_400_response",
    "server_state",
    "transport",
    "on_headers_complete",
    "on_message_begin",
    "on_header",
    "data_received",
)
MAX_HEADER_LINES = 100  # Granian's limit (hyper's default)
MAX_HEADER_BYTES = 32 * 1024  # names and values together, nginx's default buffers' worth
MAX_HEAD_BYTES = 1024 * 1024  # what uvicorn's parser may buffer of one head, URL included


class HeadTooLarge(Exception):
    """Raised in a parser callback: httptools turns it into a parser error."""


def malformed_request_body(in_body: bool) -> bytes:
    """The envelope of a request whose HTTP framing cannot be parsed."""
    if in_body:
        field, detail = "body", "The body ended early or its chunked framing is invalid"
    else:
        field, detail = "request", "The request line or a header is not valid HTTP/1.1"
    return orjson.dumps(error_body("Malformed HTTP request", [{"field": field, "message": detail}]))


def oversized_head_body() -> bytes:
    """The envelope of a request whose header lines are past the limits."""
    detail = (
        f"At most {MAX_HEADER_LINES} header lines and {MAX_HEADER_BYTES} bytes of headers"
        " are accepted"
    )
    return orjson.dumps(
        error_body("Request header fields too large", [{"field": "headers", "message": detail}])
    )


def uvicorn_envelope_protocol(headers: list[tuple[bytes, bytes]]) -> Any:
    """uvicorn's httptools protocol, its parser's 400 answered in the error envelope with
    `headers` (the security headers and X-Instance-ID the app would send)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    base: Any = HttpToolsProtocol

    class EnvelopeProtocol(base):  # type: ignore[misc]
        in_body = False
        too_large = False
        header_lines = 0
        header_bytes = 0
        head_bytes = 0

        def on_message_begin(self) -> None:
            self.in_body = False
            self.header_lines = self.header_bytes = 0
            super().on_message_begin()

        def data_received(self, data: bytes) -> None:
            if not self.in_body:
                self.head_bytes += len(data)
                if self.head_bytes > MAX_HEAD_BYTES:
                    self.too_large = True
                    self.send_400_response("head too large")
                    return
            super().data_received(data)

        def on_header(self, name: bytes, value: bytes) -> None:
            self.header_lines += 1
            self.header_bytes += len(name) + len(value)
            if self.header_lines > MAX_HEADER_LINES or self.header_bytes > MAX_HEADER_BYTES:
                self.too_large = True
                raise HeadTooLarge
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            # the body starts only once the head is taken: a URL uvicorn cannot parse
            # (httptools refuses one of 64 KiB or more) fails in here, in the request line
            super().on_headers_complete()
            self.in_body = True
            self.head_bytes = 0

        def send_400_response(self, msg: str) -> None:
            if self.too_large:
                body = oversized_head_body()
                head = [b"HTTP/1.1 431 Request Header Fields Too Large\r\n"]
            else:
                body = malformed_request_body(self.in_body)
                head = [b"HTTP/1.1 400 Bad Request\r\n"]
            for name, value in [*self.server_state.default_headers, *headers]:
                head.append(name + b": " + value + b"\r\n")
            head.append(b"content-type: application/json; charset=utf-8\r\n")
            head.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
            self.transport.write(b"".join(head) + body)
            self.transport.close()

    return EnvelopeProtocol


def typer_completion_init() -> None:
    """Register Typer's completion classes with Click (what `add_completion` would do)."""
    from typer._completion_classes import completion_init

    completion_init()


def typer_completion_script(prog_name: str, complete_var: str, shell: str) -> str:
    """The script a shell sources to complete `prog_name`."""
    from typer._completion_shared import get_completion_script

    typer_completion_init()
    return get_completion_script(prog_name=prog_name, complete_var=complete_var, shell=shell)
