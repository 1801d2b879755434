"""The shape checker of `statebridge check` and of the tests: templates held against
values, and two real documents compared by keys and JSON types."""

from __future__ import annotations

from datetime import UTC, datetime

from statebridge.ops.contract.shapes import (
    NUMBER,
    TIME,
    array_of,
    between,
    is_js_time,
    matching,
    nullable,
    parse_js_time,
    problems,
    shape_diff,
)
from statebridge.ops.contract.table import UUID4


def test_shape_markers() -> None:
    assert problems(NUMBER, True) == ["$: expected number, got boolean True"]
    assert problems(NUMBER, 29.99) == []
    assert problems(TIME, "2026-11-29T14:31:36.186Z") == []
    assert problems(TIME, "2026-11-29T14:31:36.186+00:00") != []
    assert problems(TIME, "2026-11-29T14:31:36Z") != []
    assert problems(between(0, 1), 1.5) != []
    assert problems(between(0, 1), "0.5") == ["$: expected number, got string '0.5'"]
    assert problems(nullable(NUMBER), None) == []
    assert problems(array_of(NUMBER, length=2), [1]) == ["$: expected 2 elements, got 1"]
    assert problems(array_of(NUMBER), [1, "2"]) == ["$[1]: expected number, got string '2'"]
    assert problems({"a": 1}, {"a": True}) == ["$.a: expected 1, got True"]
    assert problems({"a": 1}, {"a": 1, "extra": "fine"}) == []
    assert problems(matching(r"^\d+ seconds$"), "12 seconds") == []
    assert problems(matching(r"^\d+ seconds$"), "12 seconds ago") != []


def test_times_are_real_moments_in_javascript_form() -> None:
    assert is_js_time("2026-02-28T23:59:59.999Z")
    assert not is_js_time("2026-13-45T10:00:00.000Z")  # the right form, no such day
    assert problems(TIME, "2026-02-30T10:00:00.000Z") != []
    moment = parse_js_time("2026-11-29T14:31:36.186Z")
    assert moment == datetime(2026, 11, 29, 14, 31, 36, 186000, tzinfo=UTC)


def test_session_ids_are_uuid4s() -> None:
    assert problems(UUID4, "0b6f7a9e-3c1d-4e2f-8a5b-1c2d3e4f5a6b") == []
    assert problems(UUID4, "0b6f7a9e-3c1d-1e2f-8a5b-1c2d3e4f5a6b") != []  # version 1


def test_shape_diff_compares_keys_and_types_not_values() -> None:
    recorded = {"id": "a", "n": 1, "items": [{"k": 1}], "values": [0.5, 0.25]}
    assert shape_diff(recorded, {"id": "b", "n": 2.5, "items": [{"k": 9}], "values": [1, 2]}) == []
    assert shape_diff(recorded, {**recorded, "extra": True}) == []
    assert shape_diff(recorded, {"id": 1, "items": [], "values": [0.1]}) == [
        "$.id: expected string, got number 1",
        "$.n: missing",
        "$.items: expected 1 elements, got 0",
        "$.values: expected 2 elements, got 1",
    ]
    loose = shape_diff(recorded, {**recorded, "values": [1, "x", 3]}, loose_lengths=["$.values"])
    assert loose == ["$.values[1]: expected number, got string 'x'"]
