"""Hostile input at the protocol level: request smuggling shapes, pipelining, huge URLs and
header blocks, slow clients, bodies that are not UTF-8 JSON, session fixation, and requests on
a session racing with its deletion. Every answer is a 4xx (in the error envelope wherever
statebridge writes it) or a clean close, never a 5xx; a normal request on a new connection is
answered afterwards; the server logs no error and no traceback.

Framing is decided by the HTTP server, so those cases run on Granian and on uvicorn (the
embedded backend behind both), and once through the project's nginx. What each one does:

- Granian's Rust parser refuses a bad head itself, before the app: a bare 400 (or 414, 431)
  with an empty body and `connection: close`. Those answers cannot carry the envelope.
  Given Content-Length and Transfer-Encoding together it follows RFC 9112 section 6.3:
  the chunked framing wins, the body is read once, and the connection is closed after the
  answer, so bytes after the body are never read as a second request.
- uvicorn's parser (httptools) refuses CL+TE, repeated Content-Length and malformed header
  lines; statebridge's subclass of its protocol answers those 400s in the envelope. uvicorn
  itself has no limit on the number or size of header lines; the subclass answers more than
  100 lines, or more than 32 KiB of them, with a 431 in the envelope.
- nginx refuses every smuggling shape itself, before any upstream is asked (400 in the
  envelope from the project's config), and is stricter than both servers: `identity,
  chunked` and a tab before `chunked` are refused too. Extra spaces and `Chunked` pass.
  Header lines beyond its buffers get its 431 in the envelope; its 414 stays nginx's HTML
  page (with an error_page for it, nginx answers 500 instead). 500 short headers fit its
  buffers and reach Granian, whose bare 431 it passes on.

The body and session cases depend on the store, so they run on both backends (SQLite;
PostgreSQL + Redis), with cookie sessions on so that a forged cookie is really looked at.
"""

from __future__ import annotations

import codecs
import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
import pytest

from tests.support.envelope import assert_envelope
from tests.support.nginx import NGINX, Proxy, statebridge
from tests.support.private_services import own_server
from tests.support.rawhttp import (
    Exchange,
    access_status,
    access_statuses,
    errors_logged,
    exchange,
)
from tests.support.servers import Server

BODY = b'{"operation": "add", "values": [1, 2]}'
CHUNKED = b"%x\r\n" % len(BODY) + BODY + b"\r\n0\r\n\r\n"
COOKIE = "session_id"


def request_id(label: str) -> str:
    """Of one length for a label: a request's bytes, and so a Content-Length, stay fixed."""
    return f"{label}-{uuid.uuid4().hex}"


def post_head(rid: str, *lines: str, path: str = "/calculate") -> bytes:
    extra = "".join(f"{line}\r\n" for line in lines)
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"X-Request-ID: {rid}\r\n{extra}\r\n"
    ).encode()


def get_request(rid: str, path: str = "/health") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-ID: {rid}\r\n\r\n".encode()


NEXT_LENGTH = len(get_request(request_id("next")))


@dataclass
class Watch:
    server: Server
    url: str
    before: int = 0
    log: str = ""


@contextlib.contextmanager
def watching(server: Server, url: str | None = None) -> Iterator[Watch]:
    """Around hostile traffic: afterwards a normal request on a new connection is answered
    (through `url`, the server's own by default), no access line is a 5xx, and nothing was
    logged at error level. `watch.log` is what the server logged meanwhile."""
    watch = Watch(server, url or server.url, before=len(server.log()))
    yield watch
    rid = request_id("after")
    response = httpx.post(
        f"{watch.url}/calculate",
        json={"operation": "add", "values": [1, 2]},
        headers={"X-Request-ID": rid},
        timeout=10,
    )
    assert assert_envelope(response, 200)["data"]["result"] == 3
    assert access_status(server, rid) == 200  # its line is written after the hostile ones
    watch.log = server.log()[watch.before :]
    assert not errors_logged(watch.log), errors_logged(watch.log)
    assert all(status < 500 for status in access_statuses(watch.log)), watch.log[-2000:]


def http_server(server: Server) -> str:
    return server.env["STATEBRIDGE_HTTP_SERVER"]


class Servers:
    """One server a configuration (backend, HTTP server), started the first time a test asks
    for it and kept until the module ends: the smuggling, body and session cases share the
    embedded Granian one, and nginx sits in front of it too. Cookie sessions are on, so that
    a forged cookie is really looked at."""

    def __init__(self, stack: contextlib.ExitStack, tmp: pytest.TempPathFactory) -> None:
        self.stack = stack
        self.tmp = tmp
        self.running: dict[tuple[str, str], Server] = {}

    def get(self, kind: str, http: str) -> Server:
        if (kind, http) not in self.running:
            env = {
                "STATEBRIDGE_HTTP_SERVER": http,
                "STATEBRIDGE_SESSION_COOKIE": "true",
                "STATEBRIDGE_SESSION_COOKIE_NAME": COOKIE,
            }
            directory = self.tmp.mktemp(f"hostile-protocol-{kind}-{http}")
            server = self.stack.enter_context(own_server(kind, directory, env))
            self.running[kind, http] = server
        return self.running[kind, http]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with contextlib.ExitStack() as stack:
        yield Servers(stack, tmp_path_factory)


@pytest.fixture(params=["granian", "uvicorn"])
def front(request: pytest.FixtureRequest, servers: Servers) -> Server:
    """The embedded backend behind each HTTP server: for what the HTTP parser decides."""
    return servers.get("embedded", request.param)


@pytest.fixture(params=["embedded", pytest.param("services", marks=pytest.mark.services)])
def backend(request: pytest.FixtureRequest, servers: Servers) -> Server:
    """Each backend behind Granian: for what the stores decide."""
    return servers.get(request.param, "granian")


@dataclass(frozen=True)
class Proxied:
    server: Server
    proxy: Proxy


@pytest.fixture(scope="module")
def proxied(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    """The project's nginx in front of the embedded Granian server."""
    if NGINX is None:
        pytest.skip("nginx is not installed (scripts/ci-install-nginx.sh installs it)")
    server = servers.get("embedded", "granian")
    root = tmp_path_factory.mktemp("hostile-nginx")
    done = statebridge("deploy", "certs", str(root / "certs"))
    assert done.returncode == 0, done.stderr
    proxy = Proxy(
        prefix=root / "nginx",
        upstreams=[f"127.0.0.1:{server.port}"],
        certs=root / "certs",
        limits=["--rate", "5000r/s", "--burst", "5000"],
    ).start()
    try:
        yield Proxied(server, proxy)
    finally:
        proxy.stop()


# -- request smuggling -------------------------------------------------------------------------

REFUSED = "refused"  # a 400 and the connection closed; neither request reaches the app
TE_WINS = "te-wins"  # RFC 9112 6.3: read once as chunked, answered, then the connection closed
READ_ONCE = "read-once"  # a legal spelling: one body, and the next request answered as itself


@dataclass(frozen=True)
class Shape:
    lines: tuple[str, ...]
    body: bytes
    granian: str
    uvicorn: str
    nginx: str = REFUSED


SHAPES = {
    "cl-and-te": Shape(
        (f"Content-Length: {len(CHUNKED)}", "Transfer-Encoding: chunked"),
        CHUNKED,
        granian=TE_WINS,
        uvicorn=REFUSED,
    ),
    "te-and-short-cl": Shape(
        ("Transfer-Encoding: chunked", "Content-Length: 4"), CHUNKED, TE_WINS, REFUSED
    ),
    "te-and-cl-covering-the-next-request": Shape(
        ("Transfer-Encoding: chunked", f"Content-Length: {len(CHUNKED) + NEXT_LENGTH}"),
        CHUNKED,
        TE_WINS,
        REFUSED,
    ),
    "two-content-lengths": Shape(
        (f"Content-Length: {len(BODY)}", f"Content-Length: {len(BODY) + NEXT_LENGTH}"),
        BODY,
        REFUSED,
        REFUSED,
    ),
    "the-same-content-length-twice": Shape(
        (f"Content-Length: {len(BODY)}", f"Content-Length: {len(BODY)}"), BODY, READ_ONCE, REFUSED
    ),
    "chunked-then-identity": Shape(
        ("Transfer-Encoding: chunked, identity",), CHUNKED, REFUSED, REFUSED
    ),
    "identity-then-chunked": Shape(
        ("Transfer-Encoding: identity, chunked",), CHUNKED, READ_ONCE, READ_ONCE
    ),
    "xchunked-beside-cl": Shape(
        (f"Content-Length: {len(CHUNKED)}", "Transfer-Encoding: xchunked"),
        CHUNKED,
        REFUSED,
        REFUSED,
    ),
    "te-twice": Shape(
        ("Transfer-Encoding: chunked", "Transfer-Encoding: identity"), CHUNKED, REFUSED, REFUSED
    ),
    "te-folded-onto-cl": Shape(
        (f"Content-Length: {len(CHUNKED)}", " Transfer-Encoding: chunked"),
        CHUNKED,
        REFUSED,
        REFUSED,
    ),
    "space-before-the-colon": Shape(
        (f"Content-Length: {len(CHUNKED)}", "Transfer-Encoding : chunked"),
        CHUNKED,
        REFUSED,
        REFUSED,
    ),
    "spaces-before-chunked": Shape(
        ("Transfer-Encoding:   chunked",), CHUNKED, READ_ONCE, READ_ONCE, nginx=READ_ONCE
    ),
    "tab-before-chunked": Shape(("Transfer-Encoding:\tchunked",), CHUNKED, READ_ONCE, READ_ONCE),
    "capitalised-chunked": Shape(
        ("Transfer-Encoding: Chunked",), CHUNKED, READ_ONCE, READ_ONCE, nginx=READ_ONCE
    ),
}


def nginx_envelope(answer: httpx.Response, status: int) -> dict[str, Any]:
    """An answer nginx wrote itself, from the project's config: the envelope without the
    X-Instance-ID an instance adds (no instance was asked)."""
    assert answer.status_code == status and answer.headers["server"] == "nginx", answer
    assert answer.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = answer.json()
    assert body["status"] == "error" and body["timestamp"], body
    assert all(set(item) == {"field", "message"} for item in body["errors"]), body
    return body


def assert_refused(layer: str, done: Exchange) -> None:
    assert done.closed and not done.rest, done
    assert [answer.status_code for answer in done.answers] == [400], done.answers
    answer = done.answers[0]
    if layer == "granian":
        # Granian's parser answers before the app is asked: no envelope is possible
        assert answer.content == b"" and answer.headers["connection"] == "close"
    elif layer == "uvicorn":
        body = assert_envelope(answer, 400)
        assert body["errors"][0]["field"] == "request", body
    else:
        assert nginx_envelope(answer, 400)["message"] == "Malformed HTTP request"


def assert_shape(layer: str, outcome: str, done: Exchange, first: str, smuggled: str) -> None:
    if outcome == REFUSED:
        assert_refused(layer, done)
        return
    assert done.answers, done
    answer = done.answers[0]
    assert answer.headers["x-request-id"] == first
    assert assert_envelope(answer, 200)["data"]["result"] == 3  # the body was read once
    if outcome == TE_WINS:
        assert answer.headers["connection"] == "close"
        assert done.closed and len(done.answers) == 1 and not done.rest, done
    else:
        # the next request starts right after the body: answered as itself, connection kept
        assert len(done.answers) == 2 and not done.closed, done
        assert done.answers[1].headers["x-request-id"] == smuggled
        assert_envelope(done.answers[1], 200)


def send_shape(port: int, shape: Shape, expect: int) -> tuple[Exchange, str, str]:
    first, smuggled = request_id("first"), request_id("smuggled")
    data = post_head(first, *shape.lines) + shape.body + get_request(smuggled)
    return exchange(port, data, expect=expect), first, smuggled


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_smuggling_shapes(front: Server, shape: Shape) -> None:
    layer = http_server(front)
    outcome: str = getattr(shape, layer)
    with watching(front) as watch:
        done, first, smuggled = send_shape(front.port, shape, 2 if outcome == READ_ONCE else 1)
        assert_shape(layer, outcome, done, first, smuggled)
    # the app saw the first request only when it answered it, and the smuggled one only
    # when it was a legal next request on the connection
    assert (first in watch.log) == (outcome != REFUSED)
    assert (smuggled in watch.log) == (outcome == READ_ONCE)


@pytest.mark.nginx
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_smuggling_shapes_through_nginx(proxied: Proxied, shape: Shape) -> None:
    port = proxied.proxy.stateless_port
    with watching(proxied.server, proxied.proxy.stateless_url) as watch:
        done, first, smuggled = send_shape(port, shape, 2 if shape.nginx == READ_ONCE else 1)
        assert_shape("nginx", shape.nginx, done, first, smuggled)
    assert (first in watch.log) == (shape.nginx != REFUSED)
    assert (smuggled in watch.log) == (shape.nginx == READ_ONCE)


# -- pipelining --------------------------------------------------------------------------------


def test_pipelined_requests_are_answered_in_order(front: Server) -> None:
    ids = [request_id(f"pipe{index}") for index in range(3)]
    data = (
        get_request(ids[0])
        + post_head(ids[1], f"Content-Length: {len(BODY)}")
        + BODY
        + get_request(ids[2], "/users/user001")
    )
    with watching(front):
        done = exchange(front.port, data, expect=3)
    assert not done.closed and not done.rest, done
    assert [answer.headers["x-request-id"] for answer in done.answers] == ids
    assert [answer.status_code for answer in done.answers] == [200, 200, 200]
    assert assert_envelope(done.answers[1])["data"]["result"] == 3
    assert assert_envelope(done.answers[2])["data"]["user"]["id"] == "user001"


def test_a_bad_request_inside_a_pipeline_does_not_shift_the_others(front: Server) -> None:
    ids = [request_id(f"pipe{index}") for index in range(3)]
    bad = b'{"operation": "add", "values": [NaN]}'
    data = (
        get_request(ids[0])
        + post_head(ids[1], f"Content-Length: {len(bad)}")
        + bad
        + get_request(ids[2])
    )
    with watching(front):
        done = exchange(front.port, data, expect=3)
    assert not done.closed and not done.rest, done
    assert [answer.headers["x-request-id"] for answer in done.answers] == ids
    assert [answer.status_code for answer in done.answers] == [200, 400, 200]
    assert assert_envelope(done.answers[1], 400)["errors"][0]["field"] == "body"


# -- oversized heads ---------------------------------------------------------------------------

OVERSIZED = {
    "url-100k": b"GET /users/" + b"u" * 100_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "500-headers": b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    + b"".join(b"X-Header-%d: value\r\n" % index for index in range(500))
    + b"\r\n",
    "one-1mb-header": b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
    + b"b" * 1_000_000
    + b"\r\n\r\n",
}
# (status, whether the answer is in the envelope)
OVERSIZED_ANSWERS = {
    "granian": {
        "url-100k": (414, False),
        "500-headers": (431, False),
        "one-1mb-header": (431, False),
    },
    "uvicorn": {"url-100k": (400, True), "500-headers": (431, True), "one-1mb-header": (431, True)},
    # nginx passes 500 short headers on (they fit its buffers): Granian refuses them
    "nginx": {"url-100k": (414, False), "500-headers": (431, False), "one-1mb-header": (431, True)},
}


def assert_oversized(layer: str, name: str, done: Exchange) -> None:
    status, enveloped = OVERSIZED_ANSWERS[layer][name]
    assert [answer.status_code for answer in done.answers] == [status], (done.answers, done.rest)
    answer = done.answers[0]
    if enveloped and layer == "nginx":
        nginx_envelope(answer, status)
    elif enveloped:
        body = assert_envelope(answer, status)
        if status == 400:  # uvicorn: httptools cannot parse a URL of 64 KiB or more
            assert body["errors"][0]["field"] == "request", body
        else:
            assert body["errors"][0]["field"] == "headers", body
    if status >= 400 and layer != "nginx":
        assert done.closed  # the parser gave up on the connection


@pytest.mark.parametrize("name", OVERSIZED.keys())
def test_oversized_heads_get_a_4xx_or_are_answered(front: Server, name: str) -> None:
    with watching(front):
        done = exchange(front.port, OVERSIZED[name])
    assert_oversized(http_server(front), name, done)


def test_heads_within_the_limits_are_answered(front: Server) -> None:
    """100 header lines (Host included) and 32 KiB of them are still taken, on both servers."""
    many = b"".join(b"X-Header-%d: value\r\n" % index for index in range(99))
    big = b"X-Big: " + b"b" * (30 * 1024) + b"\r\n"
    for extra in (many, big):
        head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + b"\r\n"
        with watching(front):
            done = exchange(front.port, head)
        assert [answer.status_code for answer in done.answers] == [200], done.answers


@pytest.mark.nginx
@pytest.mark.parametrize("name", OVERSIZED.keys())
def test_oversized_heads_through_nginx(proxied: Proxied, name: str) -> None:
    with watching(proxied.server, proxied.proxy.stateless_url):
        done = exchange(proxied.proxy.stateless_port, OVERSIZED[name])
    assert_oversized("nginx", name, done)


# -- slow clients ------------------------------------------------------------------------------

SLOW_HEADS = 100  # connections that never finish their headers
SLOW_BODIES = 100  # connections that never finish their body


def test_slow_clients_do_not_starve_the_others(front: Server) -> None:
    """Slowloris: 200 connections dribble a head or a body while 20 normal requests, each on
    a new connection, are answered at once."""
    slow: list[socket.socket] = []
    latencies: list[float] = []
    no_reuse = httpx.Limits(max_keepalive_connections=0)  # each request on a new connection
    with watching(front), httpx.Client(base_url=front.url, timeout=5, limits=no_reuse) as fresh:
        try:
            for _ in range(SLOW_HEADS):
                sock = socket.create_connection(("127.0.0.1", front.port), timeout=5)
                slow.append(sock)
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            for _ in range(SLOW_BODIES):
                sock = socket.create_connection(("127.0.0.1", front.port), timeout=5)
                slow.append(sock)
                sock.sendall(post_head(request_id("slow"), "Content-Length: 4096"))
                sock.sendall(b'{"operation": "add", "values": [')
            for index in range(20):
                for number, sock in enumerate(slow):
                    sock.sendall(b"X-Slow: 1\r\n" if number < SLOW_HEADS else b" ")
                started = time.monotonic()
                response = fresh.get("/users/user001")
                latencies.append(time.monotonic() - started)
                assert assert_envelope(response, 200)["data"]["user"]["id"] == "user001", index
        finally:
            for sock in slow:
                sock.close()
    assert max(latencies) < 2.0 and sum(latencies) < 8.0, latencies


# -- bodies that are not UTF-8 JSON --------------------------------------------------------------


def utf16(encoding: str, bom: bytes = b"") -> Any:
    return lambda key: bom + ("{" + key + ': {"k": "v"}}').encode(encoding)


def raw(template: bytes) -> Any:
    """`template` with KEY replaced by where the bad value goes (a body's leading members)."""
    return lambda key: template.replace(b"KEY", key.encode())


BAD_BODIES = {
    "invalid-utf8": raw(b'{KEY: {"k": "\xff\xfe\xc3"}}'),
    "utf16le-with-bom": utf16("utf-16-le", codecs.BOM_UTF16_LE),
    "utf16be-with-bom": utf16("utf-16-be", codecs.BOM_UTF16_BE),
    "utf16le-without-bom": utf16("utf-16-le"),
    "utf16be-without-bom": utf16("utf-16-be"),
    "utf8-bom": raw(codecs.BOM_UTF8 + b'{KEY: {"k": "v"}}'),
    "lone-high-surrogate": raw(b'{KEY: {"k": "\\ud800"}}'),
    "lone-low-surrogate": raw(b'{KEY: {"k": "x\\udc00y"}}'),
    "surrogates-reversed": raw(b'{KEY: {"k": "\\ude00\\ud83d"}}'),
    "lone-surrogate-in-a-key": raw(b'{KEY: {"\\ud800": 1}}'),
    "surrogate-as-utf8-bytes": raw(b'{KEY: {"k": "\xed\xa0\x80"}}'),
    "nan": raw(b'{KEY: {"k": NaN}}'),
    "infinity": raw(b'{KEY: {"k": Infinity}}'),
    "minus-infinity": raw(b'{KEY: {"k": -Infinity}}'),
}
# where the bad value goes: session data, preferences, a new session's data
STORED = [
    ("PUT", "/api/stateful/session", '"data"'),
    ("PUT", "/api/stateful/profile/preferences", '"preferences"'),
    ("POST", "/api/stateful/session", '"userId": "user001", "data"'),
]
JSON = {"Content-Type": "application/json"}


class Client:
    """Requests whose cookie jar keeps nothing: every cookie a test sends, it sends by hand."""

    def __init__(self, server: Server) -> None:
        self.server = server
        keep_nothing = CookieJar(DefaultCookiePolicy(allowed_domains=[]))
        self.http = httpx.Client(base_url=server.url, timeout=30, cookies=keep_nothing)

    def call(self, method: str, path: str, **options: Any) -> httpx.Response:
        return self.http.request(method, path, **options)

    def new_session(self, user: str = "user001") -> str:
        response = self.call("POST", "/api/stateful/session", json={"userId": user})
        session_id: str = assert_envelope(response, 200)["data"]["session"]["id"]
        return session_id

    def session_data(self, session_id: str) -> Any:
        response = self.call("GET", "/api/stateful/session", headers={"Session-ID": session_id})
        return assert_envelope(response, 200)["data"]["session"]["data"]

    def preferences(self, session_id: str) -> Any:
        response = self.call("GET", "/api/stateful/profile", headers={"Session-ID": session_id})
        return assert_envelope(response, 200)["data"]["profile"]["preferences"]


@pytest.fixture
def client(backend: Server) -> Iterator[Client]:
    made = Client(backend)
    yield made
    made.http.close()


@pytest.mark.parametrize("make", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bodies_that_are_not_utf8_json_are_400_and_store_nothing(client: Client, make: Any) -> None:
    with watching(client.server):
        session_id = client.new_session()
        headers = {**JSON, "Session-ID": session_id}
        data, preferences = client.session_data(session_id), client.preferences(session_id)
        for method, path, members in STORED:
            response = client.call(method, path, content=make(members), headers=headers)
            answer = assert_envelope(response, 400)
            assert answer["errors"] == [{"field": "body", "message": "Malformed JSON"}], answer
        assert client.session_data(session_id) == data
        assert client.preferences(session_id) == preferences


def test_a_surrogate_pair_is_stored_and_read_back(client: Client) -> None:
    """The control for the lone surrogates above: an escaped pair is one character."""
    with watching(client.server):
        session_id = client.new_session()
        headers = {**JSON, "Session-ID": session_id}
        body = b'{"data": {"\\ud83d\\ude00": "a\\ud83d\\ude00b"}}'
        response = client.call("PUT", "/api/stateful/session", content=body, headers=headers)
        assert assert_envelope(response, 200)["data"]["session"]["data"] == {"😀": "a😀b"}
        assert client.session_data(session_id) == {"😀": "a😀b"}


@pytest.mark.parametrize(
    "body",
    [
        b'{"productId": "prod001", "quantity": NaN}',
        b'{"productId": "prod001", "quantity": Infinity}',
        b'{"productId": "prod001", "quantity": -Infinity}',
    ],
    ids=["nan", "infinity", "minus-infinity"],
)
def test_non_finite_literals_in_a_cart_add_are_400(client: Client, body: bytes) -> None:
    with watching(client.server):
        session_id = client.new_session()
        headers = {**JSON, "Session-ID": session_id}
        response = client.call("POST", "/api/stateful/cart/add", content=body, headers=headers)
        assert assert_envelope(response, 400)["errors"][0]["field"] == "body"
        response = client.call("GET", "/api/stateful/cart", headers={"Session-ID": session_id})
        assert assert_envelope(response, 200)["data"]["cart"]["items"] == []


def test_form_bodies_with_broken_utf8_are_4xx(client: Client) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with watching(client.server):
        for body, status in (
            (b"userId=%ff", 404),  # decoded with replacement characters: no such user
            (b"userId=%ed%a0%80", 404),
            (b"userId=user001&data=%ed%a0%80", 400),  # data must be an object
            (b"userId=\xff", 400),
        ):
            response = client.call("POST", "/api/stateful/session", content=body, headers=form)
            assert_envelope(response, status)


# -- session fixation ----------------------------------------------------------------------------

NEEDS_SESSION = [
    ("GET", "/api/stateful/session", None),
    ("PUT", "/api/stateful/session", {"data": {"planted": True}}),
    ("GET", "/api/stateful/cart", None),
    ("POST", "/api/stateful/cart/add", {"productId": "prod001"}),
    ("PUT", "/api/stateful/profile/preferences", {"preferences": {"planted": True}}),
    ("POST", "/api/stateful/workflow/start", {}),
    ("DELETE", "/api/stateful/session", None),
]


def assert_unknown(client: Client, headers: dict[str, str]) -> None:
    """Every route that needs a session answers 401, and none of them makes one."""
    for method, path, body in [*NEEDS_SESSION, NEEDS_SESSION[0]]:
        response = client.call(method, path, json=body, headers=headers)
        answer = assert_envelope(response, 401)
        assert answer["message"] == "Session not found or expired", (method, path, answer)


def test_a_client_chosen_session_id_is_not_adopted(client: Client) -> None:
    forged = str(uuid.uuid4())
    with watching(client.server):
        response = client.call(
            "POST",
            "/api/stateful/session",
            json={"userId": "user001"},
            headers={"Session-ID": forged, "Cookie": f"{COOKIE}={forged}"},
        )
        created = assert_envelope(response, 200)["data"]["session"]["id"]
        assert created != forged and response.headers["Session-ID"] == created
        assert response.cookies[COOKIE] == created
        assert_unknown(client, {"Session-ID": forged})
        assert client.session_data(created) == {}


def test_a_live_session_id_sent_to_create_is_not_reused(client: Client) -> None:
    with watching(client.server):
        first = client.new_session("user001")
        response = client.call(
            "POST",
            "/api/stateful/session",
            json={"userId": "user002"},
            headers={"Session-ID": first},
        )
        second = assert_envelope(response, 200)["data"]["session"]["id"]
        assert second != first
        for session_id, user in ((first, "user001"), (second, "user002")):
            response = client.call(
                "GET", "/api/stateful/session", headers={"Session-ID": session_id}
            )
            assert assert_envelope(response, 200)["data"]["session"]["userId"] == user


def test_a_forged_session_cookie_is_401(client: Client) -> None:
    forged = str(uuid.uuid4())
    with watching(client.server):
        assert_unknown(client, {"Cookie": f"{COOKIE}={forged}"})
        real = client.new_session()
        response = client.call(
            "GET", "/api/stateful/session", headers={"Cookie": f"{COOKIE}={real}"}
        )
        assert_envelope(response, 200)  # the cookie is looked at: the 401s above were lookups
        # a forged header beside a real cookie: the header decides
        headers = {"Session-ID": forged, "Cookie": f"{COOKIE}={real}"}
        assert_envelope(client.call("GET", "/api/stateful/cart", headers=headers), 401)


# -- a session deleted while it is written to ----------------------------------------------------

WRITERS = 6
WRITES_EACH = 40
ROUNDS = 3


@dataclass
class Ledger:
    """(when the request was sent, its status) for every write, from every thread."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    entries: list[tuple[float, int]] = field(default_factory=list)

    def add(self, started: float, status: int) -> None:
        with self.lock:
            self.entries.append((started, status))

    def count(self, status: int) -> int:
        with self.lock:
            return sum(1 for _, seen in self.entries if seen == status)


def write_until_gone(url: str, session_id: str, writer: int, ledger: Ledger) -> None:
    """Cart adds or session updates until three 401s in a row (or WRITES_EACH writes)."""
    headers = {"Session-ID": session_id}
    refused = 0
    with httpx.Client(base_url=url, timeout=30) as http:
        for number in range(WRITES_EACH):
            started = time.monotonic()
            if writer % 2:
                response = http.post(
                    "/api/stateful/cart/add", json={"productId": "prod001"}, headers=headers
                )
            else:
                data = {"data": {f"w{writer}n{number}": number}}
                response = http.put("/api/stateful/session", json=data, headers=headers)
            assert_envelope(response)
            ledger.add(started, response.status_code)
            refused = refused + 1 if response.status_code == 401 else 0
            if refused == 3:
                return


def test_writes_racing_a_delete_never_bring_the_session_back(client: Client) -> None:
    with watching(client.server):
        for _ in range(ROUNDS):
            session_id = client.new_session()
            ledger = Ledger()
            writers = [
                threading.Thread(
                    target=write_until_gone, args=(client.server.url, session_id, writer, ledger)
                )
                for writer in range(WRITERS)
            ]
            for writer in writers:
                writer.start()
            deadline = time.monotonic() + 10
            while ledger.count(200) < 2 * WRITERS and time.monotonic() < deadline:
                time.sleep(0.005)  # the delete lands among writes that succeed
            headers = {"Session-ID": session_id}
            response = client.call("DELETE", "/api/stateful/session", headers=headers)
            assert assert_envelope(response, 200)["data"]["deleted"] is True
            deleted_at = time.monotonic()
            for writer in writers:
                writer.join(60)
                assert not writer.is_alive()
            assert ledger.count(200) >= 2 * WRITERS
            assert {status for _, status in ledger.entries} <= {200, 401}, ledger.entries
            after = [status for started, status in ledger.entries if started > deleted_at]
            assert set(after) <= {401}, after
            for _ in range(5):
                for path in ("/api/stateful/cart", "/api/stateful/session"):
                    answer = assert_envelope(client.call("GET", path, headers=headers), 401)
                    assert answer["message"] == "Session not found or expired"
