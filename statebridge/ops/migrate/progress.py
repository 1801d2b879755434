"""Progress bars on standard error, shown only when it is a terminal.

Reports go to standard output, so `statebridge migrate data ... --json > report.json`
stays clean while a person at a terminal still sees the bars.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

Advance = Callable[[int], None]


class AmountColumn(ProgressColumn):
    """`12.3/45.6 MB` for byte counts, `1,234/5,678 rows` otherwise."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", "")
        if unit == "bytes":
            done = decimal(int(task.completed))
            total = decimal(int(task.total)) if task.total is not None else "?"
            return Text(f"{done}/{total}", style="progress.download")
        total_text = f"/{int(task.total):,}" if task.total is not None else ""
        return Text(
            f"{int(task.completed):,}{total_text} {unit}".rstrip(), style="progress.download"
        )


class Bars:
    """One rich Progress for a whole command; a no-op when standard error is not a tty."""

    def __init__(self, enabled: bool | None = None) -> None:
        console = Console(stderr=True)
        self.enabled = console.is_terminal if enabled is None else enabled
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            AmountColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not self.enabled,
        )

    def __enter__(self) -> Bars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def counter(self, description: str, total: int | None, unit: str = "rows") -> Advance:
        """A bar that moves by the amounts it is given."""
        task = self.progress.add_task(description, total=total, unit=unit)

        def advance(amount: int) -> None:
            self.progress.advance(task, amount)

        return advance

    @contextmanager
    def step(self, description: str) -> Iterator[None]:
        """A spinner for a step whose length is unknown (a query, a merge)."""
        task = self.progress.add_task(description, total=None, unit="")
        try:
            yield
        finally:
            self.progress.update(task, total=1, completed=1)
