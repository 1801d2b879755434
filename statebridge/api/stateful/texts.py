"""Fixed texts of the stateful server, word for word as Phase 1 has them."""

from __future__ import annotations

WORKFLOW_STEPS = ["started", "data_collected", "processing", "completed"]


def stateful_explanation(visit: int, session_id: str) -> list[str]:
    return [
        "This server is STATEFUL:",
        f"1. I remember you! This is visit #{visit}",
        f"2. Your session ID: {session_id}",
        "3. I maintain your shopping cart, preferences, and visit history",
        "4. Each request builds upon previous interactions",
        "5. Server maintains client state across multiple requests",
        "6. Requires session management and storage",
    ]
