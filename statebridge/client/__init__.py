"""Async Python clients for Phase 1's API, served by Phase 1 itself or by statebridge.

    async with StatefulClient("http://localhost:8000/api/stateful") as client:
        await client.create_session("user001")
        await client.add_to_cart("prod001", 2)
        cart = (await client.get_cart())["data"]["cart"]

Method names follow Phase 1's JavaScript clients (`healthCheck`, `addToCart`, ...) and
each has a snake_case twin (`health_check`, `add_to_cart`, ...).
"""

from statebridge.client.base import Exchange
from statebridge.client.errors import ClientError, NoSessionError, ResponseError, TransportError
from statebridge.client.stateful import StatefulClient
from statebridge.client.stateless import StatelessClient

__all__ = [
    "ClientError",
    "Exchange",
    "NoSessionError",
    "ResponseError",
    "StatefulClient",
    "StatelessClient",
    "TransportError",
]
