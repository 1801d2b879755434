"""The shopping cart rows of `statebridge check`."""

from __future__ import annotations

from typing import Any

from statebridge.ops.contract import table as c
from statebridge.ops.contract.checker import Checker, Extra, Reply, need
from statebridge.ops.contract.locate import Side
from statebridge.ops.contract.table import VALIDATION


def cart_total(reply: Reply, total: float) -> list[str]:
    actual = reply.data["cart"]["total"]
    return need(abs(actual - total) < 0.005, f"total: expected {total}, got {actual}")


def total_is(total: float) -> Extra:
    return lambda reply: cart_total(reply, total)


async def cart_rows(check: Checker, sid: str | None) -> None:
    row = check.row
    side: Side = "stateful"
    empty = {**c.CART_RETRIEVED["cart"], "sessionId": sid, "items": [], "total": 0, "itemCount": 0}
    await row(
        side,
        "empty cart",
        "GET",
        "/cart",
        status=200,
        message="Cart retrieved",
        data={**c.CART_RETRIEVED, "cart": empty},
        session=sid,
    )
    adds: list[tuple[str, dict[str, Any], int, int, float]] = [
        ("add to cart", {"productId": "prod001", "quantity": 2}, 2, 1, 59.98),
        ("add to cart: quantity defaults to 1", {"productId": "prod002"}, 1, 2, 79.97),
        (
            "add to cart: same product adds up",
            {"productId": "prod001", "quantity": 1},
            1,
            2,
            109.96,
        ),
    ]
    for title, body, added, count, total in adds:
        await row(
            side,
            title,
            "POST",
            "/cart/add",
            status=200,
            message="Item added to cart",
            data={
                **c.CART_ADDED,
                "cart": {**c.CART, "sessionId": sid, "itemCount": count},
                "addedItem": {"productId": body["productId"], "quantity": added},
            },
            body=body,
            session=sid,
            extra=total_is(total),
        )
    await row(
        side,
        "add to cart: unknown product",
        "POST",
        "/cart/add",
        status=400,
        message="Product nope not found",
        errors=[],
        body={"productId": "nope", "quantity": 1},
        session=sid,
    )
    await row(
        side,
        "add to cart: no productId",
        "POST",
        "/cart/add",
        status=400,
        message=VALIDATION,
        errors=c.field_error("body", "Missing required fields: productId"),
        body={"quantity": 1},
        session=sid,
    )
    cart = await row(
        side,
        "cart remembers its items",
        "GET",
        "/cart",
        status=200,
        message="Cart retrieved",
        data={**c.CART_RETRIEVED, "cart": {**c.CART_RETRIEVED["cart"], "itemCount": 2}},
        session=sid,
        extra=lambda reply: (
            cart_total(reply, 109.96)
            + need(
                {i["productId"]: i["quantity"] for i in reply.data["cart"]["items"]}
                == {"prod001": 3, "prod002": 1},
                "items are not prod001 x3 and prod002 x1",
            )
        ),
    )

    def cents(reply: Reply) -> list[str]:
        items = reply.data["cart"]["items"]
        total = reply.data["cart"]["total"]
        exact = round(sum(item["price"] * item["quantity"] for item in items), 2)
        return need(total == exact, f"total {total!r} is not rounded to cents ({exact})")

    check.judge(side, "cart total rounded to cents", "GET /cart", cart, 200, p2=True, extra=cents)
    await row(
        side,
        "remove from cart",
        "DELETE",
        "/cart/remove/prod002",
        status=200,
        message="Item removed from cart",
        data={**c.CART_REMOVED, "cart": {**c.CART, "itemCount": 1}, "removedProductId": "prod002"},
        session=sid,
        extra=lambda reply: cart_total(reply, 89.97),
    )
    await row(
        side,
        "remove from cart: absent product",
        "DELETE",
        "/cart/remove/prod003",
        status=200,
        message="Item removed from cart",
        data={**c.CART_REMOVED, "cart": {**c.CART, "itemCount": 1}, "removedProductId": "prod003"},
        session=sid,
    )
