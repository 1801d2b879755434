"""The stateless server's rows of `statebridge check`."""

from __future__ import annotations

from typing import Any

from statebridge.ops.contract import table as c
from statebridge.ops.contract.checker import ORIGIN, Checker, header_problems, need
from statebridge.ops.contract.locate import Side
from statebridge.ops.contract.shapes import BOOLEAN, NUMBER, STRING, array_of
from statebridge.ops.contract.table import SEED_USER as USER
from statebridge.ops.contract.table import VALIDATION

HELMET = {"x-content-type-options": "nosniff", "x-frame-options": None, "referrer-policy": None}


async def stateless_rows(check: Checker) -> None:
    row = check.row
    side: Side = "stateless"
    health = await row(
        side,
        "health",
        "GET",
        "/health",
        status=200,
        message="Stateless server is healthy",
        data=c.STATELESS_HEALTH,
    )
    check.judge(
        side,
        "health names the server (transition guide)",
        "GET /health",
        health,
        200,
        data={"server": "Stateless Server"},
        p2=True,
    )
    check.judge(
        side,
        "helmet security headers",
        "GET /health",
        health,
        200,
        extra=lambda reply: header_problems(reply, HELMET),
    )
    first = await row(
        side,
        "info echoes Client-ID",
        "GET",
        "/info",
        status=200,
        message="Stateless server information",
        data={**c.STATELESS_INFO, "clientId": "statebridge-check"},
        headers={"Client-ID": "statebridge-check"},
        extra=lambda reply: need(reply.data["randomValue"] < 1, "randomValue is not below 1"),
    )
    before = first.data.get("requestCount", 0)
    await row(
        side,
        "info counts requests server-wide",
        "GET",
        "/info",
        status=200,
        message="Stateless server information",
        data={**c.STATELESS_INFO, "clientId": "anonymous"},
        extra=lambda reply: need(
            reply.data["requestCount"] > before,
            f"requestCount did not grow: {before} then {reply.data['requestCount']}",
        ),
    )
    for title, operation, values, result in [
        ("", "add", [1, 2, 3, 4, 5], 15),
        ("", "subtract", [10, 3, 2], 5),
        ("", "multiply", [2, 3, 4], 24),
        ("", "average", [1, 2, 3, 4], 2.5),
        (": floats as JavaScript adds them", "add", [0.1, 0.2], 0.30000000000000004),
        (": one value", "subtract", [5], 5),
        (": negative and fraction", "multiply", [-2, 0.5], -1),
        (": five values", "average", [10, 20, 30, 40, 50], 30),
    ]:
        await row(
            side,
            f"calculate {operation}{title}",
            "POST",
            "/calculate",
            status=200,
            message="Calculation successful",
            data={
                **c.CALCULATION,
                "operation": operation,
                "input": values,
                "result": result,
                "clientContext": None,
            },
            body={"operation": operation, "values": values},
        )
    await row(
        side,
        "calculate echoes clientContext",
        "POST",
        "/calculate",
        status=200,
        message="Calculation successful",
        data={**c.CALCULATION, "clientContext": {"from": "check"}},
        body={"operation": "add", "values": [1], "clientContext": {"from": "check"}},
    )
    calc_errors: list[tuple[str, dict[str, Any], int, str, Any]] = [
        (
            "unknown operation",
            {"operation": "invalid", "values": [1, 2]},
            400,
            "Unsupported operation: invalid",
            [],
        ),
        (
            "missing values",
            {"operation": "add"},
            400,
            VALIDATION,
            c.field_error("body", "Missing required fields: values"),
        ),
        (
            "missing fields",
            {},
            400,
            VALIDATION,
            c.field_error("body", "Missing required fields: operation, values"),
        ),
        (
            "empty values",
            {"operation": "add", "values": []},
            400,
            VALIDATION,
            c.field_error("values", "Values must be a non-empty array"),
        ),
        (
            "a string among values",
            {"operation": "add", "values": [1, "2"]},
            400,
            VALIDATION,
            c.field_error("values", "All values must be numbers"),
        ),
        (
            "a boolean among values",
            {"operation": "add", "values": [1, True]},
            400,
            VALIDATION,
            c.field_error("values", "All values must be numbers"),
        ),
    ]
    for title, body, status, message, errors in calc_errors:
        await row(
            side,
            f"calculate: {title}",
            "POST",
            "/calculate",
            status=status,
            message=message,
            errors=errors,
            body=body,
        )
    for query, count, kind, item in [
        ("?count=5&type=number", 5, "number", NUMBER),
        ("?count=3&type=string", 3, "string", STRING),
        ("?count=99&type=boolean", 10, "boolean", BOOLEAN),
        ("", 1, "number", NUMBER),
    ]:
        await row(
            side,
            f"random {kind} x{count}",
            "GET",
            f"/random{query}",
            status=200,
            message="Random data generated",
            data={**c.RANDOM, "count": count, "type": kind, "values": array_of(item, count)},
        )
    await row(
        side,
        "random: unknown type",
        "GET",
        "/random?type=emoji",
        status=400,
        message=VALIDATION,
        errors=c.field_error("type", "Type must be one of: number, string, boolean"),
    )
    await row(
        side,
        "users",
        "GET",
        "/users",
        status=200,
        message="Users retrieved",
        data=c.USERS,
        extra=lambda reply: (
            need(any(user.get("id") == USER for user in reply.data["users"]), f"{USER} is missing")
            + need(reply.data["count"] == len(reply.data["users"]), "count != len(users)")
        ),
    )
    await row(
        side,
        "user by id",
        "GET",
        f"/users/{USER}",
        status=200,
        message="User found",
        data={**c.USER_FOUND, "user": {**c.USER, "id": USER, "email": "user1@example.com"}},
    )
    await row(
        side,
        "user by id: unknown",
        "GET",
        "/users/nobody",
        status=404,
        message="User not found",
        errors=[],
    )
    await row(
        side,
        "products",
        "GET",
        "/products",
        status=200,
        message="Products retrieved",
        data={**c.PRODUCTS, "filters": {"category": None, "minPrice": None, "maxPrice": None}},
        extra=lambda reply: need(
            reply.data["count"] == len(reply.data["products"]) > 0, "count != len(products)"
        ),
    )
    await row(
        side,
        "products by category and minPrice",
        "GET",
        "/products?category=electronics&minPrice=15",
        status=200,
        message="Products retrieved",
        data={
            **c.PRODUCTS,
            "filters": {"category": "electronics", "minPrice": "15", "maxPrice": None},
        },
        extra=lambda reply: need(
            all(
                p["category"] == "electronics" and p["price"] >= 15 for p in reply.data["products"]
            ),
            "a product outside the filter came back",
        ),
    )
    await row(
        side,
        "products by maxPrice",
        "GET",
        "/products?maxPrice=20",
        status=200,
        message="Products retrieved",
        data=c.PRODUCTS,
        extra=lambda reply: need(
            all(p["price"] <= 20 for p in reply.data["products"]),
            "a product over maxPrice came back",
        ),
    )
    await row(
        side,
        "products: non-numeric price bound",
        "GET",
        "/products?minPrice=abc",
        status=400,
        message=VALIDATION,
        p2=True,
    )
    await row(
        side,
        "stateless demonstration",
        "GET",
        "/demonstrate/stateless",
        status=200,
        message="Stateless behavior demonstration",
        data={**c.STATELESS_DEMONSTRATION, "clientIdentifier": "not-provided"},
    )
    await row(
        side,
        "architecture comparison",
        "GET",
        "/compare/stateful",
        status=200,
        message="Architecture comparison",
        data=c.COMPARISON,
    )
    await row(
        side,
        "unknown route",
        "GET",
        "/no/such/endpoint",
        status=404,
        message="Endpoint not found",
        errors=[],
    )
    await row(
        side,
        "malformed JSON body",
        "POST",
        "/calculate",
        status=400,
        message=VALIDATION,
        raw=b'{"operation": "add", "values": [1,',
        p2=True,
    )
    await row(
        side,
        "body over 1 MB",
        "POST",
        "/calculate",
        status=413,
        body={"operation": "add", "values": [1] * 600_000},
        p2=True,
    )
    await row(
        side,
        "CORS allows any origin",
        "GET",
        "/health",
        status=200,
        message="Stateless server is healthy",
        headers={"Origin": ORIGIN},
        extra=lambda reply: need(
            reply.headers.get("access-control-allow-origin") in ("*", ORIGIN),
            "no Access-Control-Allow-Origin for a cross-origin request",
        ),
    )
