"""The stateless server (Phase 1 port 3001): every request stands alone."""

from __future__ import annotations

import math
import random
import re
import string
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from statebridge.api import schemas
from statebridge.api.deps import Body, ServicesDep
from statebridge.api.stateless.calculate import check_values, compute
from statebridge.api.stateless.texts import COMPARISON, STATELESS_EXPLANATION
from statebridge.asgi.body import require_fields
from statebridge.envelope import ApiError, success, validation_error
from statebridge.observability import process
from statebridge.timeutil import js_now

router = APIRouter()
REQUESTS = "requestCount"
RANDOM_TYPES = ("number", "string", "boolean")
LEADING_INT = re.compile(r"^\s*([+-]?\d+)")
BASE36 = string.digits + string.ascii_lowercase


def js_parse_int(text: str | None) -> int | None:
    match = LEADING_INT.match(text or "")
    return int(match.group(1)) if match else None


def js_or_null(value: Any) -> Any:
    """JavaScript's `value || null`: empty containers are truthy there, unlike Python."""
    if value is None or value is False or value == "":
        return None
    if type(value) in (int, float) and value == 0:
        return None
    return value


def single(request: Request, name: str) -> str | None:
    """A query parameter given once; repeated ones are ambiguous and rejected."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise validation_error(name, f"{name} must be given once")
    return values[0] if values else None


@router.get("/health", responses=schemas.answers(schemas.StatelessHealth))
async def health(services: ServicesDep) -> Response:
    data = {
        "status": "healthy",
        "service": "Stateless Server",
        "server": "Stateless Server",
        "timestamp": js_now(),
        "uptime": process.uptime(),
        "memory": process.memory(),
        "requestCount": await services.counters.get(REQUESTS),
        "serverType": "stateless",
        "note": "I have no memory of previous requests",
    }
    return success(data, "Stateless server is healthy")


@router.get("/info", responses=schemas.answers(schemas.StatelessInfo))
async def info(request: Request, services: ServicesDep) -> Response:
    data = {
        "server": "Stateless Mock Server v2.0",
        "timestamp": js_now(),
        "requestCount": await services.counters.incr(REQUESTS),
        "clientId": request.headers.get("client-id") or "anonymous",
        "randomValue": random.random(),
        "message": "I have no memory of previous requests. Each request is independent.",
        "note": "This is a stateless server - I don't remember you from previous requests.",
    }
    return success(data, "Stateless server information")


@router.post(
    "/calculate",
    openapi_extra=schemas.body(schemas.CalculateRequest),
    responses=schemas.answers(schemas.Calculation, 400, store=False),
)
async def calculate(body: Body) -> Response:
    require_fields(body, "operation", "values")
    values = check_values(body["values"])
    result = compute(body["operation"], values)
    data = {
        "operation": body["operation"],
        "input": values,
        "result": result,
        "processedAt": js_now(),
        "clientContext": js_or_null(body.get("clientContext")),
        "note": "Calculation complete. I won't remember this next time.",
    }
    return success(data, "Calculation successful")


def random_values(count: int, kind: str) -> list[Any]:
    if kind == "string":
        return ["".join(random.choices(BASE36, k=8)) for _ in range(count)]
    if kind == "boolean":
        return [random.random() > 0.5 for _ in range(count)]
    return [random.random() for _ in range(count)]


@router.get("/random", responses=schemas.answers(schemas.RandomData, 400, store=False))
async def random_data(request: Request) -> Response:
    count = min(10, max(1, js_parse_int(single(request, "count")) or 1))
    kind = single(request, "type") or "number"
    if kind not in RANDOM_TYPES:
        raise validation_error("type", "Type must be one of: number, string, boolean")
    data = {
        "count": count,
        "type": kind,
        "values": random_values(count, kind),
        "generatedAt": js_now(),
        "note": "Random values are generated fresh each time with no memory of previous "
        "generations.",
    }
    return success(data, "Random data generated")


@router.get("/users", responses=schemas.answers(schemas.UserList))
async def list_users(services: ServicesDep) -> Response:
    users = await services.catalog.list_users()
    data = {
        "users": users,
        "count": len(users),
        "retrievedAt": js_now(),
        "note": "User data is retrieved fresh each time. No session or user-specific state is "
        "maintained.",
    }
    return success(data, "Users retrieved")


@router.get("/users/{user_id}", responses=schemas.answers(schemas.UserFound, 404))
async def get_user(user_id: str, services: ServicesDep) -> Response:
    # U+0000 can name no user, and PostgreSQL would refuse it with an error
    user = None if "\x00" in user_id else await services.catalog.get_user(user_id)
    if user is None:
        raise ApiError(404, "User not found")
    data = {
        "user": user,
        "retrievedAt": js_now(),
        "note": "User data retrieved. No authentication or session required - all data is in "
        "the request.",
    }
    return success(data, "User found")


def price_bound(request: Request, name: str) -> tuple[str | None, float | None]:
    """The bound as given (echoed in `filters`) and as a number; empty means absent."""
    text = single(request, name)
    if not text:
        return None, None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise validation_error(name, f"{name} must be a number")
    return text, value


@router.get("/products", responses=schemas.answers(schemas.ProductList, 400))
async def list_products(request: Request, services: ServicesDep) -> Response:
    category = min_text = min_price = max_text = max_price = None
    if request.scope["query_string"]:  # most calls have none: skip the parsing
        category = single(request, "category") or None
        min_text, min_price = price_bound(request, "minPrice")
        max_text, max_price = price_bound(request, "maxPrice")
    products = [
        product
        for product in await services.catalog.list_products()
        if (category is None or product["category"] == category)
        and (min_price is None or product["price"] >= min_price)
        and (max_price is None or product["price"] <= max_price)
    ]
    data = {
        "products": products,
        "count": len(products),
        "filters": {"category": category, "minPrice": min_text, "maxPrice": max_text},
        "retrievedAt": js_now(),
        "note": "Product data filtered based on query parameters. No user-specific preferences "
        "applied.",
    }
    return success(data, "Products retrieved")


@router.get("/demonstrate/stateless", responses=schemas.answers(schemas.StatelessDemonstration))
async def demonstrate(request: Request, services: ServicesDep) -> Response:
    current = await services.counters.incr(REQUESTS)
    data = {
        "demonstration": "Stateless Server Behavior",
        "previousRequestCount": current - 1,
        "currentRequestCount": current,
        "yourRequestNumber": current,
        "timestamp": js_now(),
        "clientIdentifier": request.headers.get("client-id") or "not-provided",
        "explanation": STATELESS_EXPLANATION,
    }
    return success(data, "Stateless behavior demonstration")


@router.get("/compare/stateful", responses=schemas.answers(schemas.Comparison, store=False))
async def compare() -> Response:
    return success(COMPARISON, "Architecture comparison")
