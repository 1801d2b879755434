"""Rich output for the demos: requests, responses and takeaways, as Phase 1's scripts print."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.json import JSON
from rich.panel import Panel
from rich.text import Text

from statebridge.client import Exchange


class Printer:
    """Prints each exchange of a client (it is the clients' `on_exchange` hook)."""

    def __init__(self, console: Console, brief: bool = False) -> None:
        self.console = console
        self.brief = brief
        self.instances: set[str] = set()

    def section(self, title: str) -> None:
        self.console.print()
        self.console.rule(f"[bold]{title}[/bold]", style="cyan")

    def subsection(self, title: str) -> None:
        self.console.print()
        self.console.rule(title, style="yellow", align="left")

    def step(self, text: str) -> None:
        self.console.print(Text(text, style="yellow"))

    def say(self, text: str, style: str = "cyan") -> None:
        self.console.print(Text(text, style=style))

    def bullets(self, title: str, lines: Iterable[str], style: str = "cyan") -> None:
        self.console.print(Text(f"\n{title}", style="bold"))
        for line in lines:
            self.console.print(Text(f"   • {line}", style=style))

    def takeaways(self, title: str, lines: Iterable[str]) -> None:
        body = "\n".join(f"• {line}" for line in lines)
        self.console.print(Panel(body, title=title, title_align="left", border_style="green"))

    def json(self, label: str, value: Any, style: str = "blue") -> None:
        self.console.print(Text(label, style=style))
        self.console.print(JSON.from_data(value, indent=2))

    def exchange(self, exchange: Exchange, side: str | None = None) -> None:
        """One request and its response, as Phase 1's printRequest/printResponse."""
        prefix = f"[{side}] " if side else ""
        self.console.print(Text(f"\n→ {prefix}{exchange.method} {exchange.path}", style="yellow"))
        session = exchange.request_headers.get("Session-ID")
        if session:
            self.console.print(Text(f"   Session-ID: {session}", style="magenta"))
        if exchange.body is not None and not self.brief:
            self.console.print(JSON.from_data(exchange.body, indent=2))
        instance = exchange.instance_id
        if instance:
            self.instances.add(instance)
        colour = "green" if exchange.status < 400 else "red"
        where = f"  (instance {instance})" if instance else ""
        message = exchange.response.get("message") if isinstance(exchange.response, dict) else ""
        self.console.print(Text(f"← {exchange.status} {message}{where}", style=colour))
        if not self.brief:
            if isinstance(exchange.response, dict | list):
                self.console.print(JSON.from_data(exchange.response, indent=2))
            else:
                self.console.print(Text(str(exchange.response)[:500]))
