"""Broken HTTP framing, sent on raw sockets (httpx will not send it): a chunked body whose
chunk size is not a number, is negative or overflows, whose data is shorter than announced,
or that is cut off mid-body. The client gets a 400, never a 5xx; the app logs no error.

Who answers depends on the layer: Granian hands the app a body that ends as if the client
had gone, and the app's body reader answers 400 in the envelope; uvicorn's parser refuses
the chunk itself, and statebridge's subclass of its protocol answers in the envelope too;
nginx reads the whole body before passing it on, so it answers 400 (in the envelope, from
the project's config) and the app never sees the request.
"""

from __future__ import annotations

import itertools
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.envelope import assert_envelope
from tests.support.nginx import NGINX, Proxy, statebridge
from tests.support.private_services import own_server
from tests.support.servers import Server

HTTP_SERVERS = ["granian", "uvicorn"]
BAD_CHUNKS = {
    "not-hex": b"zz\r\n{}\r\n0\r\n\r\n",
    "negative": b"-2\r\n{}\r\n0\r\n\r\n",
    "overflowing": b"ffffffffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
    "data-short-then-garbage": b"10\r\n{}\r\ngarbage, not a chunk\r\n0\r\n\r\n",
    "no-crlf-after-data": b'2\r\n{}XY3\r\n"a"\r\n0\r\n\r\n',
}
CUT_OFF = b'40\r\n{"operation": "add", "va'  # 0x40 bytes announced, fewer sent
_ids = itertools.count()


@pytest.fixture(scope="module", params=HTTP_SERVERS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp(f"protocol-{request.param}")
    with own_server("embedded", directory, {"STATEBRIDGE_HTTP_SERVER": request.param}) as running:
        yield running


def http_server(server: Server) -> str:
    return server.env["STATEBRIDGE_HTTP_SERVER"]


def chunked_head(path: str, request_id: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Transfer-Encoding: chunked\r\nX-Request-ID: {request_id}\r\n\r\n"
    ).encode()


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def parse(raw: bytes) -> httpx.Response:
    """One HTTP/1.1 answer (Content-Length framed) as an httpx.Response."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = [(name.strip(), value.strip()) for name, value in (x.split(":", 1) for x in lines)]
    length = int({name.lower(): value for name, value in headers}["content-length"])
    assert len(rest) == length, f"more than one answer on the connection: {raw!r:.600}"
    return httpx.Response(int(status_line.split()[1]), headers=headers, content=rest)


def send_raw(port: int, data: bytes) -> httpx.Response:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        return parse(read_all(sock))


def new_request_id(label: str) -> str:
    return f"protocol-{label}-{next(_ids)}-{time.monotonic_ns()}"


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
        time.sleep(0.05)


def errors_logged(text: str) -> list[str]:
    return [
        line
        for line in text.splitlines()
        if '"level":"error"' in line or '"level":"critical"' in line or "Traceback" in line
    ]


def assert_clean_400(server: Server, response: httpx.Response) -> None:
    """A 400 in the envelope naming the body, whoever refused it (the app or the parser)."""
    body = assert_envelope(response, 400)
    assert body["errors"][0]["field"] == "body", (http_server(server), body)
    assert response.headers["x-content-type-options"] == "nosniff"


# -- direct -----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunks", BAD_CHUNKS.values(), ids=BAD_CHUNKS.keys())
def test_a_malformed_chunk_is_400(server: Server, chunks: bytes) -> None:
    before = len(server.log())
    request_id = new_request_id("bad")
    response = send_raw(server.port, chunked_head("/calculate", request_id) + chunks)
    assert_clean_400(server, response)
    status = access_status(server, request_id)
    assert status is not None and status < 500, status
    assert not errors_logged(server.log()[before:])


def test_a_malformed_chunk_on_a_phase1_port_is_400(server: Server) -> None:
    request_id = new_request_id("stateful")
    response = send_raw(
        server.stateful_port,
        chunked_head("/session", request_id) + BAD_CHUNKS["not-hex"],
    )
    assert_clean_400(server, response)


def test_a_chunked_body_cut_off_is_no_500(server: Server) -> None:
    """The client closes mid-body: nothing to answer, but neither a 500 nor an error."""
    before = len(server.log())
    request_id = new_request_id("cut")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(chunked_head("/calculate", request_id) + CUT_OFF)
        time.sleep(0.2)  # the app is waiting for the rest of the body
    status = access_status(server, request_id)
    assert status is not None and status < 500, status
    assert not errors_logged(server.log()[before:])


def test_a_chunked_body_half_closed_is_no_500(server: Server) -> None:
    """The client stops sending (FIN) but still reads: a 400 or a closed connection."""
    request_id = new_request_id("half")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(chunked_head("/calculate", request_id) + CUT_OFF)
        sock.shutdown(socket.SHUT_WR)
        raw = read_all(sock)
    if raw:
        assert_clean_400(server, parse(raw))
    status = access_status(server, request_id)
    assert status is not None and status < 500, status


def test_the_server_still_answers(server: Server) -> None:
    response = httpx.post(
        f"{server.url}/calculate", json={"operation": "add", "values": [1, 2]}, timeout=10
    )
    assert_envelope(response, 200)


# -- through nginx ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxy(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if NGINX is None:
        pytest.skip("nginx is not installed (scripts/ci-install-nginx.sh installs it)")
    certs = tmp_path_factory.mktemp("protocol-certs")
    done = statebridge("deploy", "certs", str(certs))
    assert done.returncode == 0, done.stderr
    running = Proxy(
        prefix=tmp_path_factory.mktemp("protocol-nginx"),
        upstreams=[f"127.0.0.1:{server.port}"],
        certs=Path(certs),
        limits=["--rate", "5000r/s", "--burst", "5000"],
    ).start()
    yield running
    running.stop()


@pytest.mark.nginx
@pytest.mark.parametrize("chunks", BAD_CHUNKS.values(), ids=BAD_CHUNKS.keys())
def test_nginx_answers_a_malformed_chunk_with_400(
    server: Server, proxy: Any, chunks: bytes
) -> None:
    before = len(server.log())
    request_id = new_request_id("nginx")
    port: int = proxy.stateless_port
    response = send_raw(port, chunked_head("/calculate", request_id) + chunks)
    assert response.status_code == 400, response.text[:500]
    assert response.headers.get("server") == "nginx"  # refused before the app was asked
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert (body["status"], body["message"]) == ("error", "Malformed HTTP request"), body
    assert body["errors"][0]["field"] == "body" and body["timestamp"], body
    assert access_status(server, request_id, timeout=0.5) is None
    assert not errors_logged(server.log()[before:])


@pytest.mark.nginx
def test_nginx_with_a_chunked_body_cut_off(server: Server, proxy: Any) -> None:
    before = len(server.log())
    request_id = new_request_id("nginx-cut")
    port: int = proxy.stateless_port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(chunked_head("/calculate", request_id) + CUT_OFF)
        sock.shutdown(socket.SHUT_WR)
        raw = read_all(sock)
    if raw:
        status = parse(raw).status_code
        assert 400 <= status < 500, raw[:300]
    assert access_status(server, request_id, timeout=0.5) is None
    assert not errors_logged(server.log()[before:])
