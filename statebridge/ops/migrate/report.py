"""What a command did, for people (rich tables) and for programs (`--json`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

SHOWN = 20  # problems printed in the table; the JSON report has up to LIMIT
LIMIT = 1000


@dataclass
class Problem:
    where: str
    reason: str
    id: str | None = None


@dataclass
class Problems:
    """The first LIMIT problems in detail, and how many there were in all."""

    items: list[Problem] = field(default_factory=list)
    count: int = 0

    def add(self, where: str, reason: str, record_id: Any = None) -> None:
        self.count += 1
        if len(self.items) < LIMIT:
            shown_id = record_id if isinstance(record_id, str) else None
            self.items.append(Problem(where, reason, shown_id))


def public(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """asdict's factory that leaves out `_private` fields."""
    return {key: value for key, value in pairs if not key.startswith("_")}


def to_json(report: Any) -> str:
    data = asdict(report, dict_factory=public)
    return orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode()


def print_problems(console: Console, problems: Problems, title: str = "Problems") -> None:
    if not problems.count:
        return
    table = Table(title=f"{title} ({problems.count})", title_justify="left")
    table.add_column("where")
    table.add_column("id")
    table.add_column("reason")
    for problem in problems.items[:SHOWN]:
        table.add_row(problem.where, problem.id or "", problem.reason)
    console.print(table)
    if problems.count > SHOWN:
        console.print(f"... and {problems.count - SHOWN} more (see --json for up to {LIMIT})")


def counts_table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*(f"{cell:,}" if isinstance(cell, int) else str(cell) for cell in row))
    return table
