"""The raw HTTP/1.1 client of `statebridge bench` and `soak`, against a tiny asyncio server
on loopback that answers with prepared bytes."""

from __future__ import annotations

import asyncio

import pytest

from statebridge.ops.http import Answer, Connection, SocketError, encode

ANSWERS = {
    b"/length": b'HTTP/1.1 200 OK\r\nContent-Length: 11\r\nSession-ID: abc\r\n\r\n{"a": [1]} ',
    b"/chunked": b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
    b'4;ext=1\r\n{"a"\r\n3\r\n: 2\r\n1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n',
    b"/close": b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    b"/garbled": b"SPDY/9 what\r\n\r\n",
}


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            break
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n")
             if line.lower().startswith(b"content-length:")),
            0,
        )  # fmt: skip
        body = await reader.readexactly(length)
        path = head.split(b" ")[1]
        if path == b"/echo":
            echoed = head + body
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(echoed) + echoed)
        else:
            writer.write(ANSWERS[path])
        await writer.drain()
        if path in (b"/close", b"/garbled"):
            break
    writer.close()


async def exchange(paths: list[str]) -> tuple[list[Answer | SocketError], int]:
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    link = Connection(f"http://127.0.0.1:{port}", timeout=5)
    results: list[Answer | SocketError] = []
    for path in paths:
        try:
            results.append(await link.request("POST" if path == "/echo" else "GET", path,
                                              {"k": 1} if path == "/echo" else None))  # fmt: skip
        except SocketError as exc:
            results.append(exc)
    await link.close()
    server.close()
    await server.wait_closed()
    return results, port


def answers(results: list[Answer | SocketError]) -> list[Answer]:
    assert all(isinstance(result, Answer) for result in results), results
    return [result for result in results if isinstance(result, Answer)]


def test_keep_alive_answers_by_length_and_by_chunks() -> None:
    results, port = asyncio.run(exchange(["/length", "/chunked", "/echo", "/close", "/length"]))
    length, chunked, echo, closed, again = answers(results)
    assert (length.status, length.headers["session-id"], length.json()) == (200, "abc", {"a": [1]})
    assert (chunked.status, chunked.body) == (201, b'{"a": 2}')
    sent = echo.body
    assert sent.startswith(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % port)
    assert b'Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{"k":1}' in sent
    assert (closed.status, closed.keep) == (404, False)
    assert again.status == 200  # a new connection after the close
    # the bytes each answer took on the wire, head and body (chunk framing and trailer too)
    assert [length.size, chunked.size, closed.size] == [
        len(ANSWERS[b"/length"]), len(ANSWERS[b"/chunked"]), len(ANSWERS[b"/close"]),
    ]  # fmt: skip


def test_a_garbled_answer_is_a_socket_error() -> None:
    results, _ = asyncio.run(exchange(["/garbled", "/length"]))
    assert isinstance(results[0], SocketError)
    assert str(results[0]).startswith("ValueError")
    assert answers(results[1:])[0].status == 200


def test_nothing_listening_is_a_socket_error() -> None:
    async def refused() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        await Connection(f"http://127.0.0.1:{port}", timeout=5).request("GET", "/length")

    with pytest.raises(SocketError, match=r"^ConnectionRefusedError"):
        asyncio.run(refused())


def test_a_prepared_request() -> None:
    assert encode("GET", "/cart", "h:1", {"Session-ID": "s"}) == (
        b"GET /cart HTTP/1.1\r\nHost: h:1\r\nSession-ID: s\r\n\r\n"
    )
    assert encode("PUT", "/x", "h") == b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"
