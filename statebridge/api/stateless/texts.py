"""The fixed teaching texts of the stateless server, word for word as Phase 1 has them."""

from __future__ import annotations

from typing import Any

STATELESS_EXPLANATION = [
    "This server is STATELESS:",
    "1. I don't remember your previous requests",
    "2. The request count is server-wide, not per-client",
    "3. Each request contains all necessary information",
    "4. No sessions, no authentication state",
    "5. Easily scalable - any instance can handle any request",
]

COMPARISON: dict[str, Any] = {
    "comparison": "Stateless vs Stateful",
    "statelessCharacteristics": [
        "No memory between requests",
        "Each request is independent",
        "All data in request/response",
        "Easily scalable horizontally",
        "No session management needed",
        "Examples: REST APIs (when designed stateless), CDN, load balancers",
    ],
    "statefulCharacteristics": [
        "Maintains client state",
        "Requires session management",
        "Client context preserved",
        "Scaling requires sticky sessions or shared storage",
        "Examples: Shopping carts, user sessions, real-time games",
    ],
    "whenToUseStateless": [
        "Public APIs",
        "Microservices",
        "CDN edge servers",
        "When horizontal scaling is critical",
        "When requests are independent",
    ],
    "note": "This endpoint itself is stateless - it returns the same information to every request.",
}
