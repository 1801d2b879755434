"""Comparing JSON documents by shape: which keys exist, and what JSON type each value has.

Two tools:
- `shape_diff(expected, actual)` compares two real JSON documents (a recorded Phase 1
  response and a statebridge one): ids, timestamps and random numbers differ between them,
  their keys and types must not.
- `match(template, actual)` checks a document against a template written in the tests:
  dict keys are required, type markers (`STRING`, `TIME`, `array_of(...)`, ...) check a type,
  and any other value must be equal.

Both return a list of human-readable differences (empty when the document conforms), so an
assertion can show every mismatch at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

JS_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value; a boolean is not a number, unlike in Python."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def shape_diff(
    expected: Any,
    actual: Any,
    path: str = "$",
    loose_lengths: Collection[str] = (),
) -> list[str]:
    """Differences in keys and JSON types between two documents.

    Extra keys in `actual` are allowed (adding keys is compatible); missing ones are not.
    Arrays are compared element by element and must have the same length, except at the
    paths in `loose_lengths` (random-length content), where every element of `actual` is
    compared with the first element of `expected`.
    """
    expected_type, actual_type = json_type(expected), json_type(actual)
    if expected_type != actual_type:
        return [f"{path}: expected {expected_type}, got {actual_type} ({actual!r:.80})"]
    problems: list[str] = []
    if isinstance(expected, dict):
        for key, value in expected.items():
            if key not in actual:
                problems.append(f"{path}.{key}: missing")
            else:
                problems.extend(shape_diff(value, actual[key], f"{path}.{key}", loose_lengths))
    elif isinstance(expected, list):
        if len(expected) == len(actual):
            for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
                problems.extend(shape_diff(left, right, f"{path}[{index}]", loose_lengths))
        elif path in loose_lengths and expected:
            for index, right in enumerate(actual):
                problems.extend(shape_diff(expected[0], right, f"{path}[{index}]", loose_lengths))
        else:
            problems.append(f"{path}: expected {len(expected)} elements, got {len(actual)}")
    return problems


@dataclass(frozen=True)
class Kind:
    """A template leaf that accepts any value passing `check`."""

    name: str
    check: Callable[[Any], bool]

    def __repr__(self) -> str:
        return self.name


def _is_number(value: Any) -> bool:
    return json_type(value) == "number"


def _is_integer(value: Any) -> bool:
    return _is_number(value) and float(value).is_integer()


def is_js_time(value: Any) -> bool:
    """`Date.prototype.toISOString()` form, and a real moment (not 2026-13-45)."""
    if not isinstance(value, str) or not JS_TIME.match(value):
        return False
    try:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return False
    return True


def parse_js_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


ANY = Kind("ANY", lambda value: True)
STRING = Kind("STRING", lambda value: isinstance(value, str))
NUMBER = Kind("NUMBER", _is_number)
INTEGER = Kind("INTEGER", _is_integer)
BOOLEAN = Kind("BOOLEAN", lambda value: isinstance(value, bool))
OBJECT = Kind("OBJECT", lambda value: isinstance(value, dict))
ARRAY = Kind("ARRAY", lambda value: isinstance(value, list))
TIME = Kind("TIME", is_js_time)
UUID = Kind("UUID", lambda value: isinstance(value, str) and bool(UUID4.match(value)))


def between(low: float, high: float) -> Kind:
    return Kind(f"number in [{low}, {high}]", lambda v: _is_number(v) and low <= v <= high)


def regex(pattern: str) -> Kind:
    compiled = re.compile(pattern)
    return Kind(f"/{pattern}/", lambda v: isinstance(v, str) and bool(compiled.fullmatch(v)))


@dataclass(frozen=True)
class ArrayOf:
    """Every element matches `item`; `length`, when given, is the exact length."""

    item: Any
    length: int | None = None


def array_of(item: Any, length: int | None = None) -> ArrayOf:
    return ArrayOf(item, length)


@dataclass(frozen=True)
class OneOf:
    options: tuple[Any, ...]


def nullable(template: Any) -> OneOf:
    return OneOf((None, template))


def match(template: Any, actual: Any, path: str = "$") -> list[str]:
    """Where `actual` departs from `template` (see the module docstring for the language)."""
    if isinstance(template, Kind):
        return [] if template.check(actual) else [f"{path}: expected {template}, got {actual!r}"]
    if isinstance(template, OneOf):
        if any(not match(option, actual, path) for option in template.options):
            return []
        return [f"{path}: matches none of {template.options!r}: {actual!r}"]
    if isinstance(template, ArrayOf):
        if not isinstance(actual, list):
            return [f"{path}: expected an array, got {json_type(actual)}"]
        problems = []
        if template.length is not None and len(actual) != template.length:
            problems.append(f"{path}: expected {template.length} elements, got {len(actual)}")
        for index, item in enumerate(actual):
            problems.extend(match(template.item, item, f"{path}[{index}]"))
        return problems
    if isinstance(template, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {json_type(actual)}"]
        problems = []
        for key, value in template.items():
            if key not in actual:
                problems.append(f"{path}.{key}: missing")
            else:
                problems.extend(match(value, actual[key], f"{path}.{key}"))
        return problems
    if isinstance(template, list):
        if not isinstance(actual, list) or len(actual) != len(template):
            return [f"{path}: expected {template!r}, got {actual!r}"]
        problems = []
        for index, (left, right) in enumerate(zip(template, actual, strict=True)):
            problems.extend(match(left, right, f"{path}[{index}]"))
        return problems
    if json_type(template) != json_type(actual) or template != actual:
        return [f"{path}: expected {template!r}, got {actual!r}"]
    return []


def assert_matches(template: Any, actual: Any) -> None:
    problems = match(template, actual)
    assert not problems, "response departs from the contract:\n  " + "\n  ".join(problems)


SUCCESS_ENVELOPE = {"status": "success", "message": STRING, "data": OBJECT, "timestamp": TIME}
ERROR_ENVELOPE = {"status": "error", "message": STRING, "errors": ARRAY, "timestamp": TIME}


def success_data(response: Any, message: str, status_code: int = 200) -> Any:
    """The `data` of a Phase 1 success envelope, after checking the envelope itself."""
    assert response.status_code == status_code, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert_matches({**SUCCESS_ENVELOPE, "message": message}, body)
    assert set(body) == {"status", "message", "data", "timestamp"}, sorted(body)
    return body["data"]


def assert_error(
    response: Any, status_code: int, message: str, errors: list[dict[str, str]] | None = None
) -> list[Any]:
    """Check a Phase 1 error envelope; `errors`, when given, must be exactly that list."""
    assert response.status_code == status_code, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert_matches({**ERROR_ENVELOPE, "message": message}, body)
    assert set(body) == {"status", "message", "errors", "timestamp"}, sorted(body)
    for item in body["errors"]:
        assert_matches({"field": STRING, "message": STRING}, item)
    if errors is not None:
        assert body["errors"] == errors
    errors_seen: list[Any] = body["errors"]
    return errors_seen
