"""Carts of the `memory` session backend: kept beside those sessions, in this process only.

The session store (statebridge/stores/sessions/memory.py) owns the dict of carts, so that a
session that ends, expires or gets a new id takes its cart with it; this store is given that
dict and a way to ask whether a session is live (the two stores import nothing of each
other: they are wired together in statebridge/wiring/services.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from statebridge.stores.carts.base import CartItem, CartStore, Line, ProductLines, SessionGone
from statebridge.timeutil import utcnow

CartLine = tuple[int, datetime, datetime]  # quantity, added, updated
Carts = dict[str, dict[str, CartLine]]  # session id -> product id -> line


class MemoryCartStore(CartStore):
    def __init__(
        self,
        engine: AsyncEngine,
        catalog: ProductLines,
        carts: Carts,
        live: Callable[[str], bool],
    ) -> None:
        super().__init__(engine, catalog)
        self.carts = carts
        self.live = live

    async def _lines(self, session_id: str) -> list[CartItem]:
        cart = self.carts.get(session_id, {})
        rows: list[Line] = [
            (index, product_id, quantity, added, updated)
            for index, (product_id, (quantity, added, updated)) in enumerate(cart.items())
        ]
        return await self._items(rows)

    async def items(
        self, session_id: str, started: Awaitable[list[Line]] | None = None
    ) -> list[CartItem]:
        return await self._lines(session_id)

    async def add(self, session_id: str, product_id: str, quantity: int) -> list[CartItem]:
        if not self.live(session_id):
            raise SessionGone(session_id)
        now = utcnow()
        cart = self.carts.setdefault(session_id, {})
        held, added, _ = cart.get(product_id, (0, now, now))
        cart[product_id] = (held + quantity, added, now)
        return await self._lines(session_id)

    async def remove(self, session_id: str, product_id: str) -> list[CartItem]:
        cart = self.carts.get(session_id)
        if cart is not None:
            cart.pop(product_id, None)
            if not cart:
                del self.carts[session_id]
        return await self._lines(session_id)

    async def clear(self, session_id: str) -> None:
        self.carts.pop(session_id, None)

    async def count_active(self) -> int:
        return sum(
            1 for session_id, cart in list(self.carts.items()) if cart and self.live(session_id)
        )
