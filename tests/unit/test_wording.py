"""Counts in the command-line output read right at one and at many."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from statebridge.ops.archive.export import ExportReport
from statebridge.ops.migrate.data import DataReport
from statebridge.ops.migrate.merge import TableReport
from statebridge.ops.migrate.render import render_data
from statebridge.ops.migrate.report import Problems
from statebridge.ops.soak.instances import Instance
from statebridge.ops.soak.report import Result
from statebridge.ops.soak.users import SharedSession, Stats
from statebridge.wording import counted


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, "0 instances"), (1, "1 instance"), (2, "2 instances"), (1000, "1000 instances")],
)
def test_counted(count: int, expected: str) -> None:
    assert counted(count, "instance") == expected


def test_counted_groups_thousands_and_takes_irregular_plurals() -> None:
    assert counted(12345, "user", grouped=True) == "12,345 users"
    assert counted(1, "entry", "entries") == "1 entry"
    assert counted(3, "entry", "entries") == "3 entries"


def soak_result(instances: int, sessions: int, connections: int) -> Result:
    return Result(
        seconds=10.0,
        connections=connections,
        instances=[Instance(f"http://127.0.0.1:{9000 + n}") for n in range(instances)],
        stats=Stats(requests=100),
        sessions=[SharedSession(f"s{n}") for n in range(sessions)],
        problems=[],
    )


def test_the_soak_report_at_one() -> None:
    first = soak_result(1, 1, 1).report().splitlines()[0]
    assert first == (
        "statebridge soak: 10 s, 1 connection, stateful mix, 1 instance (1 shared session)"
    )


def test_the_soak_report_at_many() -> None:
    first = soak_result(2, 100, 200).report().splitlines()[0]
    assert first == (
        "statebridge soak: 10 s, 200 connections, stateful mix, 2 instances (100 shared sessions)"
    )


def rendered(report: DataReport) -> str:
    out = io.StringIO()
    render_data(report, Console(file=out, width=200, no_color=True))
    return out.getvalue()


@pytest.mark.parametrize(
    ("kept", "invalid", "expected"),
    [
        (1, 1, ["1 existing row differs from the source and was kept", "1 invalid record,"]),
        (2, 3, ["2 existing rows differ from the source and were kept", "3 invalid records,"]),
        (1234, 1, ["1,234 existing rows differ", "1 invalid record,"]),
    ],
)
def test_migrate_data_counts(kept: int, invalid: int, expected: list[str]) -> None:
    table = TableReport("users", "users.json", read=kept + invalid, kept_different=kept)
    strict = DataReport("sqlite", dry_run=False, force=False, strict=True, tables=[table])
    strict.problems = Problems(count=invalid)
    strict.aborted = True
    text = rendered(strict)
    for words in expected:
        assert words in text, text


@pytest.mark.parametrize(("records", "words"), [(1, "1 record in"), (2, "2 records in")])
def test_migrate_data_total(records: int, words: str) -> None:
    table = TableReport("users", "users.json", read=records, inserted=records)
    done = DataReport("sqlite", dry_run=False, force=False, strict=False, tables=[table])
    done.written = True
    assert words in rendered(done)


def test_the_export_summary_at_one_and_at_many() -> None:
    one = ExportReport("out.json", users=1, products=1, sessions=1, carts=1, cart_items=1)
    assert one.summary().startswith(
        "exported 1 user, 1 product, 1 live session and 1 cart (1 item), requestCount 0, "
    )
    many = ExportReport("out.json", users=2, products=3, sessions=0, carts=0, cart_items=0)
    assert many.summary().startswith(
        "exported 2 users, 3 products, 0 live sessions and 0 carts (0 items), requestCount 0, "
    )
