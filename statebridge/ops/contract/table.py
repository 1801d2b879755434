"""The Phase 1 contract as templates (see `shapes`): what each endpoint's `data` holds.

Written from the contract table and checked against responses recorded from the real
Phase 1, so a server that passes these is one Phase 1's clients can talk to.
"""

from __future__ import annotations

from typing import Any

from statebridge.ops.contract.shapes import (
    ARRAY,
    INTEGER,
    NUMBER,
    OBJECT,
    STRING,
    TIME,
    Kind,
    array_of,
    between,
    matching,
    nullable,
)

SEED_USER = "user001"
VALIDATION = "Validation failed"
ANY = Kind("any", lambda _value, _path: [])
UUID4 = matching(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SESSION_AGE = matching(r"^\d+ seconds$")
WORKFLOW_ID = matching(r"^workflow_\d+$")
WORKFLOW_STEPS = ["started", "data_collected", "processing", "completed"]

MEMORY: dict[str, Any] = {
    "rss": INTEGER,
    "heapTotal": INTEGER,
    "heapUsed": INTEGER,
    "external": INTEGER,
    "arrayBuffers": INTEGER,
}
UPTIME = between(0, 10**9)
USER: dict[str, Any] = {"id": STRING, "name": STRING, "email": STRING, "preferences": OBJECT}
PRODUCT: dict[str, Any] = {"id": STRING, "name": STRING, "price": NUMBER, "category": STRING}
CART_ITEM: dict[str, Any] = {
    "productId": STRING,
    "name": STRING,
    "price": NUMBER,
    "quantity": INTEGER,
    "addedAt": TIME,
}

STATELESS_HEALTH: dict[str, Any] = {
    "status": "healthy",
    "service": "Stateless Server",
    "timestamp": TIME,
    "uptime": UPTIME,
    "memory": MEMORY,
    "requestCount": INTEGER,
    "serverType": "stateless",
    "note": "I have no memory of previous requests",
}
STATELESS_INFO: dict[str, Any] = {
    "server": STRING,
    "timestamp": TIME,
    "requestCount": INTEGER,
    "clientId": STRING,
    "randomValue": between(0, 1),
    "message": "I have no memory of previous requests. Each request is independent.",
    "note": "This is a stateless server - I don't remember you from previous requests.",
}
CALCULATION: dict[str, Any] = {
    "operation": STRING,
    "input": array_of(NUMBER),
    "result": NUMBER,
    "processedAt": TIME,
    "clientContext": ANY,
    "note": "Calculation complete. I won't remember this next time.",
}
RANDOM: dict[str, Any] = {
    "count": INTEGER,
    "type": STRING,
    "values": ARRAY,
    "generatedAt": TIME,
    "note": STRING,
}
USERS: dict[str, Any] = {
    "users": array_of(USER),
    "count": INTEGER,
    "retrievedAt": TIME,
    "note": STRING,
}
USER_FOUND: dict[str, Any] = {
    "user": USER,
    "retrievedAt": TIME,
    "note": "User data retrieved. No authentication or session required - all data is in the "
    "request.",
}
PRODUCTS: dict[str, Any] = {
    "products": array_of(PRODUCT),
    "count": INTEGER,
    "filters": {
        "category": nullable(STRING),
        "minPrice": nullable(STRING),
        "maxPrice": nullable(STRING),
    },
    "retrievedAt": TIME,
    "note": STRING,
}
STATELESS_DEMONSTRATION: dict[str, Any] = {
    "demonstration": STRING,
    "previousRequestCount": INTEGER,
    "currentRequestCount": INTEGER,
    "yourRequestNumber": INTEGER,
    "timestamp": TIME,
    "clientIdentifier": STRING,
    "explanation": array_of(STRING, length=6),
}
COMPARISON: dict[str, Any] = {
    "comparison": "Stateless vs Stateful",
    "statelessCharacteristics": array_of(STRING, length=6),
    "statefulCharacteristics": array_of(STRING, length=5),
    "whenToUseStateless": array_of(STRING, length=5),
    "note": STRING,
}

SERVER_STATS: dict[str, Any] = {"activeSessions": INTEGER, "activeCarts": INTEGER}
STATEFUL_HEALTH: dict[str, Any] = {
    "status": "healthy",
    "service": "Stateful Server",
    "timestamp": TIME,
    "uptime": UPTIME,
    "memory": MEMORY,
    **SERVER_STATS,
    "serverType": "stateful",
    "note": "I maintain client state across requests",
}
SESSION_INFO: dict[str, Any] = {"sessionId": STRING, "userId": STRING, "sessionAge": SESSION_AGE}
STATEFUL_INFO: dict[str, Any] = {
    "server": STRING,
    "timestamp": TIME,
    "sessionInfo": nullable(SESSION_INFO),
    "serverStats": SERVER_STATS,
    "message": "I remember you and maintain your state across requests!",
    "note": "This is a stateful server - I track sessions, carts, and user preferences.",
}
SESSION_CREATED: dict[str, Any] = {
    "session": {"id": STRING, "userId": STRING, "createdAt": TIME, "expiresAt": TIME},
    "user": {"id": STRING, "name": STRING, "email": STRING},
    "note": STRING,
}
SESSION: dict[str, Any] = {
    "session": {
        "id": STRING,
        "userId": STRING,
        "createdAt": TIME,
        "lastAccessed": TIME,
        "expiresAt": TIME,
        "data": OBJECT,
    },
    "note": STRING,
}
SESSION_UPDATED: dict[str, Any] = {
    "session": {"id": STRING, "data": OBJECT, "lastAccessed": TIME},
    "note": STRING,
}
SESSION_DELETED: dict[str, Any] = {"sessionId": STRING, "deleted": True, "note": STRING}
CART: dict[str, Any] = {
    "sessionId": STRING,
    "items": array_of(CART_ITEM),
    "total": NUMBER,
    "itemCount": INTEGER,
    "updatedAt": TIME,
}
CART_RETRIEVED: dict[str, Any] = {
    "cart": {**CART, "createdAt": TIME},
    "note": "Shopping cart retrieved. This is a stateful feature - the server remembers your "
    "cart across requests.",
}
CART_ADDED: dict[str, Any] = {
    "cart": CART,
    "addedItem": {"productId": STRING, "quantity": INTEGER},
    "note": STRING,
}
CART_REMOVED: dict[str, Any] = {"cart": CART, "removedProductId": STRING, "note": STRING}
CART_CLEARED: dict[str, Any] = {
    "cart": {"sessionId": STRING, "items": [], "total": 0, "updatedAt": TIME},
    "note": STRING,
}
PROFILE: dict[str, Any] = {"profile": USER, "note": STRING}
PREFERENCES_UPDATED: dict[str, Any] = {
    "profile": {"id": STRING, "preferences": OBJECT, "updatedAt": TIME},
    "note": STRING,
}
STATEFUL_DEMONSTRATION: dict[str, Any] = {
    "demonstration": STRING,
    "sessionInfo": {
        "sessionId": STRING,
        "userId": STRING,
        "sessionCreated": TIME,
        "sessionAge": SESSION_AGE,
    },
    "visitCount": INTEGER,
    "timestamp": TIME,
    "explanation": array_of(STRING, length=7),
    "note": STRING,
}
WORKFLOW_STARTED: dict[str, Any] = {
    "workflowId": WORKFLOW_ID,
    "currentStep": "started",
    "nextStep": "data_collected",
    "message": STRING,
    "note": STRING,
}
WORKFLOW_ADVANCED: dict[str, Any] = {
    "workflowId": WORKFLOW_ID,
    "currentStep": STRING,
    "nextStep": STRING,
    "progress": matching(r"^\d/4$"),
    "message": matching(r"^Proceeded to step: "),
    "note": STRING,
}
WORKFLOW_COMPLETED: dict[str, Any] = {
    "workflowId": WORKFLOW_ID,
    "currentStep": "completed",
    "message": "Workflow completed!",
    "steps": WORKFLOW_STEPS,
    "startedAt": TIME,
    "completedAt": TIME,
    "note": STRING,
}


def success(message: Any, data: Any = OBJECT) -> dict[str, Any]:
    """The success envelope around `data`."""
    return {"status": "success", "message": message, "data": data, "timestamp": TIME}


def failure(message: Any = STRING, errors: Any = ARRAY) -> dict[str, Any]:
    """The error envelope; validation errors are `{field, message}` objects."""
    return {"status": "error", "message": message, "errors": errors, "timestamp": TIME}


def field_error(field: str, message: str) -> list[dict[str, str]]:
    return [{"field": field, "message": message}]


VALIDATION_ERRORS = array_of({"field": STRING, "message": STRING}, min_length=1)
