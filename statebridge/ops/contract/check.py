"""`statebridge check`: walk the Phase 1 contract against any server and print a table.

Point it at Phase 1 and at Phase 2 alike. Rows in the P2 column are where Phase 2 fixes
Phase 1 on purpose, so Phase 1 failing them is expected; `--ignore-p2` keeps those out of
the exit code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx
from rich.console import Console
from rich.table import Table
from rich.text import Text

from statebridge.ops.contract.checker import Checker, Row
from statebridge.ops.contract.locate import locate
from statebridge.ops.contract.rows_stateful import stateful_rows
from statebridge.ops.contract.rows_stateless import stateless_rows

TIMEOUT = 15.0


@dataclass
class Outcome:
    stateless_url: str
    stateful_url: str
    rows: list[Row]

    @property
    def failed(self) -> list[Row]:
        return [row for row in self.rows if not row.passed]

    def exit_code(self, ignore_p2: bool = False) -> int:
        counted = [row for row in self.failed if not (ignore_p2 and row.p2)]
        return 1 if counted else 0

    def as_dict(self) -> dict[str, object]:
        return {
            "stateless_url": self.stateless_url,
            "stateful_url": self.stateful_url,
            "passed": sum(row.passed for row in self.rows),
            "failed": len(self.failed),
            "failed_p2": sum(row.p2 for row in self.failed),
            "rows": [row.as_dict() for row in self.rows],
        }


async def walk(checker: Checker) -> None:
    """Every row of the table, in order: the same rows on every run, whatever the answers."""
    await stateless_rows(checker)
    await stateful_rows(checker)


async def run_check(
    url: str | None, stateless_url: str | None = None, stateful_url: str | None = None
) -> Outcome:
    """Find both APIs (LocateError if one is missing), then run every row, in order."""
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        stateless = stateless_url or await locate(url or "", "stateless", http)
        stateful = stateful_url or await locate(url or "", "stateful", http)
        checker = Checker(http, stateless.rstrip("/"), stateful.rstrip("/"))
        await walk(checker)
        return Outcome(checker.bases["stateless"], checker.bases["stateful"], checker.rows)


def verdict(row: Row) -> Text:
    if row.passed:
        return Text("pass", style="green")
    if row.p2:
        return Text("FAIL (P2)", style="yellow")
    return Text("FAIL", style="bold red")


def render(outcome: Outcome, console: Console, ignore_p2: bool = False) -> None:
    table = Table(title="Phase 1 contract check", title_justify="left", expand=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("server")
    table.add_column("check")
    table.add_column("request", overflow="fold")
    table.add_column("expected", overflow="fold")
    table.add_column("got", overflow="fold")
    table.add_column("P2", justify="center")
    table.add_column("result")
    for row in outcome.rows:
        table.add_row(
            str(row.number),
            row.side,
            row.title,
            row.request,
            row.expected,
            row.got,
            "P2" if row.p2 else "",
            verdict(row),
        )
    console.print(f"stateless: {outcome.stateless_url}\nstateful:  {outcome.stateful_url}")
    console.print(table)
    for row in outcome.failed:
        label = " (P2: Phase 1 is known to differ here)" if row.p2 else ""
        console.print(f"[bold]#{row.number} {row.side}: {row.title}[/bold]{label}")
        for problem in row.problems:
            console.print(f"    {problem}", markup=False, highlight=False)
    failed_p2 = sum(row.p2 for row in outcome.failed)
    passed = len(outcome.rows) - len(outcome.failed)
    summary = f"{passed} passed, {len(outcome.failed)} failed"
    if failed_p2:
        summary += f" ({failed_p2} of them P2 rows, where Phase 1 is known to differ)"
    style = "green" if outcome.exit_code(ignore_p2) == 0 else "red"
    console.print(summary, style=style, highlight=False)


def dump(outcome: Outcome) -> str:
    return json.dumps(outcome.as_dict(), indent=2)
