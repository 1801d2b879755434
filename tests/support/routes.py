"""Routes the tests walk: one table, shared by the modules that need it."""

from __future__ import annotations

from typing import Any

# Every route that needs a live session, with a body that would otherwise succeed.
SESSION_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/session", None),
    ("PUT", "/session", {"data": {"a": 1}}),
    ("DELETE", "/session", None),
    ("GET", "/cart", None),
    ("POST", "/cart/add", {"productId": "prod001", "quantity": 1}),
    ("DELETE", "/cart/remove/prod001", None),
    ("DELETE", "/cart", None),
    ("GET", "/profile", None),
    ("PUT", "/profile/preferences", {"preferences": {"theme": "dark"}}),
    ("GET", "/demonstrate/stateful", None),
    ("POST", "/workflow/start", None),
    ("POST", "/workflow/next", None),
]
