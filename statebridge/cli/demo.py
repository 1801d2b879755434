"""What `statebridge demo` and `statebridge check` do, as functions returning exit codes.

The CLI imports this lazily, so `statebridge --help` does not pay for Rich and httpx.
"""

from __future__ import annotations

import asyncio

from rich.console import Console

from statebridge.client import ClientError, ResponseError, TransportError
from statebridge.ops.contract import check as checking
from statebridge.ops.contract.locate import LocateError, locate
from statebridge.ops.demo import compare, stateful, stateless
from statebridge.ops.demo.console import Printer


async def _demo(
    which: str, url: str, stateless_url: str | None, stateful_url: str | None, out: Printer
) -> None:
    if which == "stateless":
        await stateless.run(stateless_url or await locate(url, "stateless"), out)
    elif which == "stateful":
        await stateful.run(stateful_url or await locate(url, "stateful"), out)
    elif which == "compare":
        left = stateless_url or await locate(url, "stateless")
        right = stateful_url or await locate(url, "stateful")
        await compare.run(left, right, out)
    else:
        raise ValueError(f"no demo named {which!r}")


def run_demo(
    which: str,
    url: str,
    stateless_url: str | None = None,
    stateful_url: str | None = None,
    brief: bool = False,
    console: Console | None = None,
) -> int:
    console = console or Console()
    out = Printer(console, brief=brief)
    try:
        asyncio.run(_demo(which, url, stateless_url, stateful_url, out))
    except LocateError as exc:
        console.print(f"[red]❌ {exc}[/red]", highlight=False)
        return 2
    except TransportError as exc:
        console.print(f"\n[red]❌ Demo failed: the server stopped answering: {exc}[/red]")
        return 1
    except ResponseError as exc:
        console.print(f"\n[red]❌ Demo failed: unexpected {exc.status_code} {exc.message}[/red]")
        if exc.envelope:
            console.print_json(data=exc.envelope)
        return 1
    except ClientError as exc:
        console.print(f"\n[red]❌ Demo failed: {exc}[/red]")
        return 1
    return 0


def run_check(
    url: str | None,
    stateless_url: str | None = None,
    stateful_url: str | None = None,
    ignore_p2: bool = False,
    as_json: bool = False,
    console: Console | None = None,
) -> int:
    console = console or Console()
    try:
        outcome = asyncio.run(checking.run_check(url, stateless_url, stateful_url))
    except LocateError as exc:
        console.print(f"[red]statebridge check: {exc}[/red]", highlight=False)
        return 2
    if as_json:
        print(checking.dump(outcome))
    else:
        checking.render(outcome, console, ignore_p2)
    return outcome.exit_code(ignore_p2)
