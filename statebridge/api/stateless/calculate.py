"""`/calculate` arithmetic, with JavaScript's number semantics where they matter."""

from __future__ import annotations

import math
from typing import Any

from statebridge.envelope import ApiError, validation_error

OPERATIONS = ("add", "subtract", "multiply", "average")
SAFE_INTEGER = 2**53


def is_number(value: Any) -> bool:
    """JSON numbers only: booleans are not numbers (Python thinks they are)."""
    return type(value) in (int, float)


def as_js_number(value: int | float) -> int | float:
    """What JavaScript would hold: integers beyond 2**53 become doubles."""
    if isinstance(value, int) and abs(value) > SAFE_INTEGER:
        return float(value)
    return value


def compute(operation: str, values: list[int | float]) -> int | float:
    """Fold the values left to right in IEEE doubles, as Phase 1's JavaScript does.

    The fold is explicit: Python's `sum()` of floats is compensated (from 3.12 on) and would
    disagree with JavaScript in the last bits, and Python ints would not round like doubles.
    """
    doubles = [float(value) for value in values]
    if operation in ("add", "average"):
        result = 0.0
        for value in doubles:
            result += value
        if operation == "average":
            result /= len(doubles)
    elif operation == "subtract":
        result = doubles[0]
        for value in doubles[1:]:
            result -= value
    elif operation == "multiply":
        result = 1.0
        for value in doubles:
            result *= value
    else:
        raise ApiError(400, f"Unsupported operation: {str(operation)[:100]}")
    if not math.isfinite(result):
        raise validation_error("values", "Result is not a finite number")
    if result.is_integer() and abs(result) < SAFE_INTEGER:
        return int(result)
    return result


def check_values(values: Any) -> list[int | float]:
    if not isinstance(values, list) or not values:
        raise validation_error("values", "Values must be a non-empty array")
    if not all(is_number(value) for value in values):
        raise validation_error("values", "All values must be numbers")
    return [as_js_number(value) for value in values]
