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
from tests.support.rawhttp import (
    access_status,
    errors_logged,
    new_request_id,
    parse,
    read_all,
    send_raw,
)
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
