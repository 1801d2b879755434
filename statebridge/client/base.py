"""The HTTP plumbing the two clients share: one httpx client, envelopes in, errors out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import httpx

from statebridge.client.errors import ResponseError, TransportError

DEFAULT_TIMEOUT = 10.0


@dataclass
class Exchange:
    """One request and its answer, handed to `on_exchange` (the demo prints these)."""

    method: str
    path: str
    body: Any
    request_headers: dict[str, str]
    status: int
    headers: Mapping[str, str]
    response: Any
    elapsed_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def instance_id(self) -> str | None:
        """Which statebridge instance answered (None for servers that do not say, like Phase 1)."""
        return self.headers.get("x-instance-id")


ExchangeHook = Callable[[Exchange], None]


class BaseClient:
    """Async JSON client for one Phase 1 style server.

    Works with or without `async with`: the httpx client is created on first use and
    closed by `aclose()` or on leaving the context.
    """

    def __init__(
        self,
        base_url: str,
        *,
        client_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        on_exchange: ExchangeHook | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self.timeout = timeout
        self.on_exchange = on_exchange
        self.last_exchange: Exchange | None = None
        self._transport = transport
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None or self._http.is_closed:
            self._http = httpx.AsyncClient(
                base_url=self.base_url, timeout=self.timeout, transport=self._transport
            )
        return self._http

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.client_id:
            headers["Client-ID"] = self.client_id
        return headers

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send one request; return the success envelope or raise `ResponseError`."""
        headers = self._headers()
        query = {key: str(value) for key, value in (params or {}).items() if value is not None}
        try:
            response = await self._client().request(
                method, path, json=body, headers=headers, params=query or None
            )
        except httpx.TimeoutException as exc:
            raise TransportError(f"{method} {self.base_url}{path}: timed out") from exc
        except httpx.HTTPError as exc:
            raise TransportError(f"{method} {self.base_url}{path}: {exc}") from exc
        parsed = parse_json(response)
        target = path + (f"?{response.request.url.query.decode()}" if query else "")
        exchange = Exchange(
            method=method,
            path=target,
            body=body,
            request_headers=headers,
            status=response.status_code,
            headers=response.headers,
            response=parsed if parsed is not None else response.text,
            elapsed_ms=response.elapsed.total_seconds() * 1000,
        )
        self.last_exchange = exchange
        if self.on_exchange is not None:
            self.on_exchange(exchange)
        if response.status_code >= 400 or not isinstance(parsed, dict):
            envelope = parsed if isinstance(parsed, dict) else None
            raise ResponseError(response.status_code, envelope, response.text)
        return parsed

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> Self:
        self._client()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def parse_json(response: httpx.Response) -> Any:
    """The body as JSON, or None when it is not JSON."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None
