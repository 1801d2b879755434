"""A small template language for JSON documents, so each contract row reads like the table.

A template is matched against a decoded JSON value:
- a dict: the value must be an object holding at least those keys (adding keys is
  compatible, removing or renaming one is not), each matched recursively;
- a `Kind` marker (`STRING`, `NUMBER`, `INTEGER`, `BOOLEAN`, `OBJECT`, `ARRAY`, `TIME`,
  `array_of(...)`, `nullable(...)`, `matching(...)`, `between(...)`): a JSON type check;
- anything else: the value must be equal (and of the same JSON type: `1` is not `true`).

`problems(template, value)` lists every mismatch, one readable line each.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

JS_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


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


def _time(value: Any, path: str) -> list[str]:
    if isinstance(value, str) and JS_TIME.match(value):
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
        if json_type(value) == "number" and low <= value <= high:
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
