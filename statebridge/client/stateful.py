"""Python twin of Phase 1's `StatefulClient`: it keeps the session id and sends it back."""

from __future__ import annotations

from typing import Any

from statebridge.client.base import BaseClient, ExchangeHook
from statebridge.client.errors import NoSessionError, ResponseError

Envelope = dict[str, Any]
PHASE1_CLIENT_ID = "stateful-demo-client"
SESSION_HEADER = "Session-ID"


class StatefulClient(BaseClient):
    """Client of the stateful server (Phase 1 port 3002, or statebridge's /api/stateful).

    `create_session()` remembers the id the server hands out (the `Session-ID` response
    header, or `data.session.id` from servers that only put it in the body) and every
    later call sends it as the `Session-ID` request header. Session-bound calls made
    without a session raise `NoSessionError` before touching the network, as Phase 1's
    client does.
    """

    def __init__(
        self,
        base_url: str = "http://localhost:3002",
        *,
        client_id: str | None = PHASE1_CLIENT_ID,
        session_id: str | None = None,
        timeout: float = 10.0,
        on_exchange: ExchangeHook | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            base_url, client_id=client_id, timeout=timeout, on_exchange=on_exchange, **kwargs
        )
        self.session_id = session_id

    @property
    def sessionId(self) -> str | None:
        return self.session_id

    def _headers(self) -> dict[str, str]:
        headers = super()._headers()
        if self.session_id:
            headers[SESSION_HEADER] = self.session_id
        return headers

    def _require_session(self) -> None:
        if not self.session_id:
            raise NoSessionError("No active session. Call create_session() first.")

    async def _bound(self, method: str, path: str, body: Any = None) -> Envelope:
        self._require_session()
        return await self.request(method, path, body)

    async def health_check(self) -> Envelope:
        return await self.request("GET", "/health")

    async def get_server_info(self) -> Envelope:
        return await self.request("GET", "/info")

    async def create_session(self, user_id: str, data: dict[str, Any] | None = None) -> Envelope:
        envelope = await self.request("POST", "/session", {"userId": user_id, "data": data or {}})
        exchange = self.last_exchange
        from_header = exchange.headers.get(SESSION_HEADER) if exchange else None
        session = envelope.get("data", {}).get("session") or {}
        self.session_id = from_header or session.get("id") or self.session_id
        return envelope

    async def get_session(self) -> Envelope:
        return await self._bound("GET", "/session")

    async def update_session(self, data: dict[str, Any]) -> Envelope:
        return await self._bound("PUT", "/session", {"data": data})

    async def delete_session(self) -> Envelope:
        try:
            envelope = await self._bound("DELETE", "/session")
        except ResponseError as exc:
            if exc.status_code == 401:  # already gone on the server: forget it here too
                self.session_id = None
            raise
        self.session_id = None
        return envelope

    async def regenerate_session(self) -> Envelope:
        """A new session id for the same session (statebridge only; call it at login): the
        client keeps the new id, the old one no longer works."""
        envelope = await self._bound("POST", "/session/regenerate", {})
        exchange = self.last_exchange
        from_header = exchange.headers.get(SESSION_HEADER) if exchange else None
        session = envelope.get("data", {}).get("session") or {}
        self.session_id = from_header or session.get("id") or self.session_id
        return envelope

    async def get_cart(self) -> Envelope:
        return await self._bound("GET", "/cart")

    async def add_to_cart(self, product_id: str, quantity: int = 1) -> Envelope:
        body = {"productId": product_id, "quantity": quantity}
        return await self._bound("POST", "/cart/add", body)

    async def remove_from_cart(self, product_id: str) -> Envelope:
        return await self._bound("DELETE", f"/cart/remove/{product_id}")

    async def clear_cart(self) -> Envelope:
        return await self._bound("DELETE", "/cart")

    async def get_profile(self) -> Envelope:
        return await self._bound("GET", "/profile")

    async def update_preferences(self, preferences: dict[str, Any]) -> Envelope:
        return await self._bound("PUT", "/profile/preferences", {"preferences": preferences})

    async def demonstrate_stateful_behavior(self) -> Envelope:
        return await self._bound("GET", "/demonstrate/stateful")

    async def start_workflow(self) -> Envelope:
        return await self._bound("POST", "/workflow/start", {})

    async def next_workflow_step(self) -> Envelope:
        return await self._bound("POST", "/workflow/next", {})

    # Phase 1's names, so code written against its JavaScript client reads the same
    healthCheck = health_check
    getServerInfo = get_server_info
    createSession = create_session
    getSession = get_session
    updateSession = update_session
    deleteSession = delete_session
    regenerateSession = regenerate_session
    getCart = get_cart
    addToCart = add_to_cart
    removeFromCart = remove_from_cart
    clearCart = clear_cart
    getProfile = get_profile
    updatePreferences = update_preferences
    demonstrateStatefulBehavior = demonstrate_stateful_behavior
    startWorkflow = start_workflow
    nextWorkflowStep = next_workflow_step
