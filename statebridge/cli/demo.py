"""What `statebridge demo` and `statebridge check` do, as functions returning exit codes.

The CLI imports this lazily, so `statebridge --help` does not pay for Rich and httpx.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rich.console import Console

from statebridge.cli.support import print_json
from statebridge.client import ClientError, Exchange, ResponseError, TransportError
from statebridge.ops.contract import check as checking
from statebridge.ops.contract.locate import LocateError, locate
from statebridge.ops.demo import compare, scale_out, stateful, stateless
from statebridge.ops.demo.console import Printer


class Recorder(Printer):
    """A Printer that also keeps every exchange, for `demo --json`."""

    def __init__(self, console: Console, brief: bool = False) -> None:
        super().__init__(console, brief)
        self.exchanges: list[dict[str, Any]] = []

    def exchange(self, exchange: Exchange, side: str | None = None) -> None:
        super().exchange(exchange, side)
        message = exchange.response.get("message") if isinstance(exchange.response, dict) else None
        self.exchanges.append(
            {
                "side": side,
                "method": exchange.method,
                "path": exchange.path,
                "sessionId": exchange.request_headers.get("Session-ID"),
                "body": exchange.body,
                "status": exchange.status,
                "message": message,
                "instance": exchange.instance_id,
                "response": exchange.response,
            }
        )


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
    as_json: bool = False,
) -> int:
    """Replay a demo; with `as_json` the narration goes to standard error and standard output
    gets one JSON document: the demo, its verdict, the error if any and every exchange."""
    console = console or Console(stderr=as_json)
    out = Recorder(console, brief=brief)
    code, error = 0, None
    try:
        asyncio.run(_demo(which, url, stateless_url, stateful_url, out))
    except LocateError as exc:
        console.print(f"[red]❌ {exc}[/red]", highlight=False)
        code, error = 2, str(exc)
    except TransportError as exc:
        console.print(f"\n[red]❌ Demo failed: the server stopped answering: {exc}[/red]")
        code, error = 1, f"the server stopped answering: {exc}"
    except ResponseError as exc:
        console.print(f"\n[red]❌ Demo failed: unexpected {exc.status_code} {exc.message}[/red]")
        if exc.envelope:
            console.print_json(data=exc.envelope)
        code, error = 1, f"unexpected {exc.status_code} {exc.message}"
    except ClientError as exc:
        console.print(f"\n[red]❌ Demo failed: {exc}[/red]")
        code, error = 1, str(exc)
    if as_json:
        print_json(
            {
                "demo": which,
                "passed": code == 0,
                "error": error,
                "instances": sorted(out.instances),
                "exchanges": out.exchanges,
            }
        )
    return code


def run_scale_out(
    brief: bool = False,
    migrate: bool = False,
    as_json: bool = False,
    console: Console | None = None,
) -> int:
    """Two local instances, memory sessions then the shared backend; 0 when the memory
    session is lost on the other instance and the shared one is found there."""
    console = console or Console(stderr=as_json)
    out = Recorder(console, brief=brief)
    error = None
    outcome = scale_out.Outcome()
    try:
        outcome = asyncio.run(scale_out.run(out, migrate))
    except (RuntimeError, ClientError) as exc:
        console.print(f"\n[red]❌ Demo failed: {exc}[/red]", highlight=False)
        error = str(exc)
    passed = error is None and outcome.passed
    if error is None and not passed:
        error = (
            f"expected 401 from instance B with memory sessions and 200 with the shared "
            f"backend; got {outcome.memory_status} and {outcome.shared_status}"
        )
        console.print(f"[red]❌ {error}[/red]", highlight=False)
    if as_json:
        print_json(
            {
                "demo": "scale-out",
                "passed": passed,
                "error": error,
                "memory": {"statusOnOtherInstance": outcome.memory_status},
                "shared": {
                    "backend": outcome.shared_backend,
                    "statusOnOtherInstance": outcome.shared_status,
                },
                "instances": sorted(out.instances),
                "exchanges": out.exchanges,
            }
        )
    return 0 if passed else 1


def run_check(
    url: str | None,
    stateless_url: str | None = None,
    stateful_url: str | None = None,
    ignore_p2: bool = False,
    as_json: bool = False,
    console: Console | None = None,
) -> int:
    console = console or Console(stderr=as_json)
    try:
        outcome = asyncio.run(checking.run_check(url, stateless_url, stateful_url))
    except LocateError as exc:
        console.print(f"[red]statebridge check: {exc}[/red]", highlight=False)
        if as_json:
            print_json({"error": str(exc), "rows": []})
        return 2
    if as_json:
        print(checking.dump(outcome))
    else:
        checking.render(outcome, console, ignore_p2)
    return outcome.exit_code(ignore_p2)
