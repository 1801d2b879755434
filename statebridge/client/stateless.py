"""Python twin of Phase 1's `StatelessClient`: same method names, same arguments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from statebridge.client.base import BaseClient, ExchangeHook

Envelope = dict[str, Any]
PHASE1_CLIENT_ID = "stateless-demo-client"


class StatelessClient(BaseClient):
    """Client of the stateless server (Phase 1 port 3001, or statebridge's /api/stateless).

    Every method returns the whole success envelope (`{"status", "message", "data",
    "timestamp"}`), as Phase 1's client returns `response.data`; an error status raises
    `ResponseError` carrying the error envelope.
    """

    def __init__(
        self,
        base_url: str = "http://localhost:3001",
        *,
        client_id: str | None = PHASE1_CLIENT_ID,
        timeout: float = 10.0,
        on_exchange: ExchangeHook | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            base_url, client_id=client_id, timeout=timeout, on_exchange=on_exchange, **kwargs
        )

    async def health_check(self) -> Envelope:
        return await self.request("GET", "/health")

    async def get_server_info(self) -> Envelope:
        return await self.request("GET", "/info")

    async def perform_calculation(
        self, operation: str, values: Sequence[Any], client_context: Any = None
    ) -> Envelope:
        body: dict[str, Any] = {"operation": operation, "values": list(values)}
        if client_context is not None:
            body["clientContext"] = client_context
        return await self.request("POST", "/calculate", body)

    async def get_random_data(self, count: int = 5, kind: str = "number") -> Envelope:
        return await self.request("GET", "/random", params={"count": count, "type": kind})

    async def get_users(self) -> Envelope:
        return await self.request("GET", "/users")

    async def get_user_by_id(self, user_id: str) -> Envelope:
        return await self.request("GET", f"/users/{user_id}")

    async def get_products(
        self,
        filters: Mapping[str, Any] | None = None,
        *,
        category: str | None = None,
        min_price: float | None = None,
        max_price: float | None = None,
    ) -> Envelope:
        """Filters as Phase 1 takes them (`{"category": ...}`) or as keywords."""
        params: dict[str, Any] = dict(filters or {})
        keywords = {"category": category, "minPrice": min_price, "maxPrice": max_price}
        params.update({key: value for key, value in keywords.items() if value is not None})
        return await self.request("GET", "/products", params=params)

    async def demonstrate_stateless_behavior(self) -> Envelope:
        return await self.request("GET", "/demonstrate/stateless")

    async def compare_with_stateful(self) -> Envelope:
        return await self.request("GET", "/compare/stateful")

    # Phase 1's names, so code written against its JavaScript client reads the same
    healthCheck = health_check
    getServerInfo = get_server_info
    performCalculation = perform_calculation
    getRandomData = get_random_data
    getUsers = get_users
    getUserById = get_user_by_id
    getProducts = get_products
    demonstrateStatelessBehavior = demonstrate_stateless_behavior
    compareWithStateful = compare_with_stateful
