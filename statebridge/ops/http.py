"""A minimal asyncio HTTP/1.1 client for load, shared by `statebridge bench` and `soak`.

httpx would spend more of the load generator's CPU than the servers spend answering. Here
one keep-alive connection writes a request as prepared bytes in one go and reads exactly
Content-Length (or chunked) bytes back: a few microseconds a request, no pooling.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

FAILURES = (
    OSError,
    asyncio.IncompleteReadError,
    asyncio.LimitOverrunError,
    TimeoutError,
    ValueError,
)


class SocketError(Exception):
    """The connection failed: refused, reset, closed mid-answer, garbled, or timed out."""


@dataclass(slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    keep: bool = True
    size: int = 0  # bytes read for it: head and body (with any chunk framing)

    def json(self) -> Any:
        return orjson.loads(self.body)


def tls_context(url: str, insecure: bool = False) -> ssl.SSLContext | None:
    """The TLS context for an https URL (None for http); `insecure` skips verification."""
    if urlsplit(url).scheme != "https":
        return None
    context = ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def encode(
    method: str,
    target: str,
    host: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> bytes:
    """One request as bytes; a body gets Content-Length (so does an empty POST or PUT)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


async def read_answer(reader: asyncio.StreamReader, keep_body: bool = True) -> Answer:
    """Read one answer; without `keep_body` the body is read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    headers: dict[str, str] = {}
    for line in head[:-4].decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = b""
    read = len(head)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            read += len(size_line)
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
                    read += len(trailer)
                read += len(trailer)
                break
            chunk = await reader.readexactly(size + 2)
            read += len(chunk)
            if keep_body:
                parts.append(chunk[:-2])
        body = b"".join(parts)
    elif length := int(headers.get("content-length") or 0):
        body = await reader.readexactly(length)
        read += length
        if not keep_body:
            body = b""
    keep = headers.get("connection", "").lower() != "close"
    return Answer(status, headers, body, keep, read)


class Connection:
    """One HTTP/1.1 keep-alive connection, opened on first use and again after a failure."""

    def __init__(
        self, url: str, timeout: float = 30.0, context: ssl.SSLContext | None = None
    ) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.authority = parts.netloc or f"{self.host}:{self.port}"
        self.timeout = timeout
        self.context = context if context is not None else tls_context(url)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        """Connect now unless connected (so a caller can time requests without the connect)."""
        if self.writer is not None:
            return
        try:
            async with asyncio.timeout(self.timeout):
                self.reader, self.writer = await asyncio.open_connection(
                    self.host, self.port, ssl=self.context
                )
        except FAILURES as exc:
            await self.close()
            raise SocketError(f"{type(exc).__name__}: {exc}") from None

    async def send(self, data: bytes, keep_body: bool = True) -> Answer:
        """Write one prepared request and read its answer; SocketError when that fails."""
        await self.open()
        assert self.reader is not None and self.writer is not None
        try:
            async with asyncio.timeout(self.timeout):
                self.writer.write(data)
                answer = await read_answer(self.reader, keep_body)
        except FAILURES as exc:
            await self.close()
            raise SocketError(f"{type(exc).__name__}: {exc}") from None
        if not answer.keep:
            await self.close()
        return answer

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Answer:
        """A request with an optional JSON body."""
        sent = dict(headers or {})
        payload = None
        if body is not None:
            sent["Content-Type"] = "application/json"
            payload = orjson.dumps(body)
        return await self.send(encode(method, path, self.authority, sent, payload))

    async def close(self) -> None:
        writer, self.writer, self.reader = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()
