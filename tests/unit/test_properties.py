"""Property tests: /calculate arithmetic and cart arithmetic against independent models.

The calculator must behave like Phase 1's JavaScript (IEEE doubles, left to right); the cart
must total exactly in decimal and round to cents. Both are checked in-process over many
examples, and over HTTP over a bounded number.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statebridge.api.stateless.calculate import OPERATIONS, check_values, compute
from statebridge.envelope import ApiError
from statebridge.stores.carts.base import CartItem, cart_total
from tests.support.envelope import success_data
from tests.support.servers import Server

HTTP_SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CENT = Decimal("0.01")

small_ints = st.integers(min_value=-(10**6), max_value=10**6)
small_floats = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)
numbers = st.one_of(small_ints, small_floats)
value_lists = st.lists(numbers, min_size=1, max_size=12)


def js_model(operation: str, values: list[float]) -> float:
    """What Phase 1's JavaScript computes: doubles, folded left to right."""
    doubles = [float(value) for value in values]
    if operation == "add":
        total = 0.0
        for value in doubles:
            total += value
        return total
    if operation == "subtract":
        result = doubles[0]
        for value in doubles[1:]:
            result -= value
        return result
    if operation == "multiply":
        product = 1.0
        for value in doubles:
            product *= value
        return product
    total = 0.0
    for value in doubles:
        total += value
    return total / len(doubles)


def same_number(result: float, model: float) -> bool:
    """Equal as doubles; JavaScript has one zero as far as JSON is concerned."""
    return float(result) == model or (result == 0 and model == 0)


any_ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what JSON parsers give
any_floats = st.floats(allow_nan=False, allow_infinity=False)
wide_lists = st.lists(st.one_of(any_ints, any_floats, small_ints), min_size=1, max_size=12)


@given(st.sampled_from(OPERATIONS), wide_lists)
def test_calculate_matches_javascript_doubles(operation: str, values: list[float]) -> None:
    accepted = check_values(values)
    model = js_model(operation, values)
    if not math.isfinite(model):
        with pytest.raises(ApiError) as caught:
            compute(operation, accepted)
        assert caught.value.status_code == 400
        return
    result = compute(operation, accepted)
    assert same_number(result, model), (operation, values, result, model)
    if isinstance(result, float):
        assert not result.is_integer() or abs(result) >= 2**53, "integral results are ints"


def test_calculate_rounds_like_javascript() -> None:
    # 2**53 + 1 is not a double: JavaScript gets 2**53 back, Python ints would not
    assert compute("add", check_values([2**53, 1, 1])) == float(2**53)
    assert compute("add", [0.1, 0.2]) == 0.30000000000000004
    with pytest.raises(ApiError):
        compute("add", [1e308, 1e308, -1e308])  # Infinity part-way, as in JavaScript
    # left-to-right doubles, not a compensated sum
    assert compute("add", [1e16, 1.0, -1e16]) == 0


@given(st.sampled_from(OPERATIONS), st.lists(small_ints, min_size=1, max_size=6))
def test_integer_arithmetic_is_exact(operation: str, values: list[int]) -> None:
    result = compute(operation, check_values(values))
    if operation == "add":
        assert result == sum(values)
    elif operation == "subtract":
        assert result == values[0] - sum(values[1:])
    elif operation == "multiply":
        exact = math.prod(values)
        assert result == exact if abs(exact) <= 2**53 else math.isclose(result, exact)
    else:
        assert result == sum(values) / len(values)


json_scalars = st.one_of(st.none(), st.booleans(), small_ints, small_floats, st.text(max_size=5))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(json_values)
def test_values_are_accepted_only_as_a_non_empty_array_of_numbers(values: Any) -> None:
    valid = (
        isinstance(values, list)
        and len(values) > 0
        and all(type(value) in (int, float) for value in values)
    )
    try:
        check_values(values)
    except ApiError as exc:
        assert not valid
        assert exc.status_code == 400
        assert exc.message == "Validation failed"
        assert exc.errors[0]["field"] == "values"
    else:
        assert valid


@given(st.text(max_size=20).filter(lambda text: text not in OPERATIONS))
def test_unknown_operations_are_refused(operation: str) -> None:
    with pytest.raises(ApiError) as caught:
        compute(operation, [1, 2])
    assert caught.value.message == f"Unsupported operation: {operation}"


# --- cart arithmetic, in process ---------------------------------------------------------

prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999999.99"), places=2)
quantities = st.integers(min_value=1, max_value=1000)
NOW = datetime(2026, 1, 1)


def item(index: int, price: Decimal, quantity: int) -> CartItem:
    return CartItem(f"p{index}", f"product {index}", price, quantity, NOW, NOW)


@given(st.lists(st.tuples(prices, quantities), max_size=12))
def test_cart_total_is_exact_decimal_rounded_to_cents(lines: list[tuple[Decimal, int]]) -> None:
    items = [item(index, price, quantity) for index, (price, quantity) in enumerate(lines)]
    exact = sum((price * quantity for price, quantity in lines), Decimal(0))
    total = cart_total(items)
    assert isinstance(total, float)
    # a two-decimal amount of at most 15 digits survives the float exactly, so its shortest
    # repr is the exact decimal: no 59.980000000000004
    assert Decimal(repr(total)) == exact.quantize(CENT, rounding=ROUND_HALF_UP)


@given(
    st.lists(
        st.tuples(
            st.decimals(min_value=Decimal("0"), max_value=Decimal("1000"), places=4),
            quantities,
        ),
        max_size=6,
    )
)
def test_cart_total_rounds_half_up_to_cents(lines: list[tuple[Decimal, int]]) -> None:
    items = [item(index, price, quantity) for index, (price, quantity) in enumerate(lines)]
    exact = sum((price * quantity for price, quantity in lines), Decimal(0))
    assert cart_total(items) == float(exact.quantize(CENT, rounding=ROUND_HALF_UP))


# --- over HTTP ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=15) as client:
        yield client


@HTTP_SETTINGS
@given(operation=st.sampled_from(OPERATIONS), values=value_lists)
def test_calculate_over_http(
    http: httpx.Client, server: Server, operation: str, values: list[float]
) -> None:
    body = {"operation": operation, "values": values}
    response = http.post(f"{server.stateless_url}/calculate", json=body)
    data = success_data(response, "Calculation successful")
    assert data["input"] == values
    assert same_number(data["result"], js_model(operation, values))


@pytest.fixture(scope="module")
def catalog_prices(http: httpx.Client, server: Server) -> dict[str, Decimal]:
    products = http.get(f"{server.stateless_url}/products").json()["data"]["products"]
    return {product["id"]: Decimal(str(product["price"])) for product in products}


operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(["prod001", "prod002", "prod003"]), quantities),
        st.tuples(st.just("remove"), st.sampled_from(["prod001", "prod002", "prod003"])),
        st.tuples(st.just("clear")),
    ),
    min_size=1,
    max_size=10,
)


@HTTP_SETTINGS
@given(steps=operations)
def test_cart_follows_a_model_over_http(
    http: httpx.Client,
    server: Server,
    catalog_prices: dict[str, Decimal],
    steps: list[tuple[Any, ...]],
) -> None:
    base = server.stateful_url
    created = http.post(f"{base}/session", json={"userId": "user002"})
    headers = {"Session-ID": created.headers["session-id"]}
    model: dict[str, int] = {}
    try:
        for step in steps:
            if step[0] == "add":
                _, product, quantity = step
                body = {"productId": product, "quantity": quantity}
                response = http.post(f"{base}/cart/add", json=body, headers=headers)
                data = success_data(response, "Item added to cart")
                model[product] = model.get(product, 0) + quantity
            elif step[0] == "remove":
                response = http.delete(f"{base}/cart/remove/{step[1]}", headers=headers)
                data = success_data(response, "Item removed from cart")
                model.pop(step[1], None)
            else:
                response = http.delete(f"{base}/cart", headers=headers)
                data = success_data(response, "Cart cleared")
                model.clear()
            check_cart(data["cart"], model, catalog_prices)
        cart = success_data(http.get(f"{base}/cart", headers=headers), "Cart retrieved")["cart"]
        check_cart(cart, model, catalog_prices)
        assert cart["itemCount"] == len(model)
    finally:
        http.delete(f"{base}/session", headers=headers)


def check_cart(cart: dict[str, Any], model: dict[str, int], unit: dict[str, Decimal]) -> None:
    seen = {line["productId"]: line["quantity"] for line in cart["items"]}
    assert seen == model
    assert [line["productId"] for line in cart["items"]] == list(model)  # insertion order
    exact = sum((unit[product] * quantity for product, quantity in model.items()), Decimal(0))
    assert Decimal(repr(float(cart["total"]))) == exact.quantize(CENT)
