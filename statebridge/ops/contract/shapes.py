"""A small template language for JSON documents, so each contract row reads like the table.

A template is matched against a decoded JSON value:
- a dict: the value must be an object holding at least those keys (adding keys is
  compatible, removing or renaming one is not), each matched recursively;
- a `Kind` marker (`STRING`, `NUMBER`, `INTEGER`, `BOOLEAN`, `OBJECT`, `ARRAY`, `TIME`,
  `array_of(...)`, `nullable(...)`, `matching(...)`, `between(...)`): a JSON type check;
- anything else: the value must be equal (and of the same JSON type: `1` is not `true`).

`problems(template, value)` lists every mismatch, one readable line each.

`shape_diff(expected, actual)` compares two real documents instead (a recorded Phase 1
answer and a statebridge one): ids, timestamps and random numbers differ between them,
their keys and JSON types must not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

JS_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
JS_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def json_type(value: Any) -> str:
    """The JSON type of a decoded value; in JSON a boolean is not a number."""
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
    return type(value).__name__


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Kind:
    """A type marker: `check` returns the problems of one value at `path`."""

    name: str
    check: Callable[[Any, str], list[str]]

    def __repr__(self) -> str:
        return self.name


def of_type(name: str) -> Kind:
    def check(value: Any, path: str) -> list[str]:
        actual = json_type(value)
        return [] if actual == name else [f"{path}: expected {name}, got {actual} {short(value)}"]

    return Kind(name, check)


STRING = of_type("string")
NUMBER = of_type("number")
BOOLEAN = of_type("boolean")
OBJECT = of_type("object")
ARRAY = of_type("array")
NULL = of_type("null")


def _integer(value: Any, path: str) -> list[str]:
    if json_type(value) == "number" and float(value).is_integer():
        return []
    return [f"{path}: expected an integer, got {short(value)}"]


def is_js_time(value: Any) -> bool:
    """`Date.prototype.toISOString()` form, and a real moment (not 2026-13-45)."""
    if not isinstance(value, str) or not JS_TIME.match(value):
        return False
    try:
        datetime.strptime(value, JS_TIME_FORMAT)
    except ValueError:
        return False
    return True


def parse_js_time(value: str) -> datetime:
    """A `toISOString()` time as an aware UTC datetime."""
    return datetime.strptime(value, JS_TIME_FORMAT).replace(tzinfo=UTC)


def _time(value: Any, path: str) -> list[str]:
    if is_js_time(value):
        return []
    return [f"{path}: expected a time like 2026-01-31T12:00:00.000Z, got {short(value)}"]


INTEGER = Kind("integer", _integer)
TIME = Kind("time", _time)


def array_of(item: Any, length: int | None = None, min_length: int = 0) -> Kind:
    """An array whose every element matches `item`; optionally of an exact length."""

    def check(value: Any, path: str) -> list[str]:
        if not isinstance(value, list):
            return [f"{path}: expected array, got {json_type(value)} {short(value)}"]
        if length is not None and len(value) != length:
            return [f"{path}: expected {length} elements, got {len(value)}"]
        if len(value) < min_length:
            return [f"{path}: expected at least {min_length} elements, got {len(value)}"]
        found: list[str] = []
        for index, element in enumerate(value):
            found += problems(item, element, f"{path}[{index}]")
        return found

    return Kind(f"array_of({item!r})", check)


def nullable(inner: Any) -> Kind:
    """null, or a value matching `inner`."""

    def check(value: Any, path: str) -> list[str]:
        return [] if value is None else problems(inner, value, path)

    return Kind(f"nullable({inner!r})", check)


def matching(pattern: str) -> Kind:
    """A string matching the regular expression `pattern` (from its start)."""
    compiled = re.compile(pattern)

    def check(value: Any, path: str) -> list[str]:
        if isinstance(value, str) and compiled.match(value):
            return []
        return [f"{path}: expected a string like /{pattern}/, got {short(value)}"]

    return Kind(f"matching({pattern!r})", check)


def between(low: float, high: float) -> Kind:
    """A number from `low` to `high`, both included."""

    def check(value: Any, path: str) -> list[str]:
        if json_type(value) != "number":
            return NUMBER.check(value, path)
        if low <= value <= high:
            return []
        return [f"{path}: expected a number in {low}..{high}, got {short(value)}"]

    return Kind(f"between({low}, {high})", check)


def problems(template: Any, value: Any, path: str = "$") -> list[str]:
    """Every way `value` fails `template` (empty when it conforms)."""
    if isinstance(template, Kind):
        return template.check(value, path)
    if isinstance(template, dict):
        if not isinstance(value, dict):
            return [f"{path}: expected object, got {json_type(value)} {short(value)}"]
        found: list[str] = []
        for key, inner in template.items():
            if key not in value:
                found.append(f"{path}.{key}: missing")
            else:
                found += problems(inner, value[key], f"{path}.{key}")
        return found
    if isinstance(template, list):
        if not isinstance(value, list) or len(value) != len(template):
            return [f"{path}: expected {short(template)}, got {short(value)}"]
        found = []
        for index, (inner, element) in enumerate(zip(template, value, strict=True)):
            found += problems(inner, element, f"{path}[{index}]")
        return found
    if json_type(template) != json_type(value) or template != value:
        return [f"{path}: expected {short(template)}, got {short(value)}"]
    return []


def shape_diff(
    expected: Any,
    actual: Any,
    path: str = "$",
    loose_lengths: Collection[str] = (),
) -> list[str]:
    """Differences in keys and JSON types between two real documents.

    Extra keys in `actual` are allowed (adding keys is compatible); missing ones are not.
    Arrays are compared element by element and must have the same length, except at the
    paths in `loose_lengths` (random-length content), where every element of `actual` is
    compared with the first element of `expected`.
    """
    expected_type, actual_type = json_type(expected), json_type(actual)
    if expected_type != actual_type:
        return [f"{path}: expected {expected_type}, got {actual_type} {short(actual)}"]
    found: list[str] = []
    if isinstance(expected, dict):
        for key, value in expected.items():
            if key not in actual:
                found.append(f"{path}.{key}: missing")
            else:
                found += shape_diff(value, actual[key], f"{path}.{key}", loose_lengths)
    elif isinstance(expected, list):
        if len(expected) == len(actual):
            for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
                found += shape_diff(left, right, f"{path}[{index}]", loose_lengths)
        elif path in loose_lengths and expected:
            for index, right in enumerate(actual):
                found += shape_diff(expected[0], right, f"{path}[{index}]", loose_lengths)
        else:
            found.append(f"{path}: expected {len(expected)} elements, got {len(actual)}")
    return found
