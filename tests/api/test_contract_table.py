"""Every row of `statebridge check`'s contract table is a test here, against the real
servers: adding a row to the table (statebridge/ops/contract/rows_*.py) adds a test.

The table is walked once per server and mount, in order (a row reads on from the answers
before it); each row is then its own test. The stateless API is walked at the root of its
Phase 1 port, at the root of the combined port and under /api/stateless; the stateful API
on its Phase 1 port and under /api/stateful. P2 rows are rows like any other here:
statebridge must pass them all.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from statebridge.ops.contract.check import Outcome, run_check, walk
from statebridge.ops.contract.checker import NO_BODY, Checker, Reply, Row
from statebridge.ops.contract.locate import Side
from tests.support.servers import Server

MOUNTS = ["legacy", "root", "prefixed"]


class DryChecker(Checker):
    """Walks the table without sending anything: every row, none of them answered."""

    def __init__(self) -> None:
        super().__init__(None, "", "")  # type: ignore[arg-type]

    async def send(
        self,
        side: Side,
        method: str,
        path: str,
        *,
        body: Any = NO_BODY,
        raw: bytes | None = None,
        session: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        return Reply(failure="not sent")


def table() -> list[tuple[Side, str]]:
    checker = DryChecker()
    asyncio.run(walk(checker))
    return [(row.side, row.title) for row in checker.rows]


TABLE = table()


def bases(server: Server, mount: str) -> tuple[str, str]:
    return {
        "legacy": (server.stateless_url, server.stateful_url),
        "root": (server.url, f"{server.url}/api/stateful"),
        "prefixed": (f"{server.url}/api/stateless", f"{server.url}/api/stateful"),
    }[mount]


@pytest.fixture(scope="module", params=MOUNTS)
def walked(request: pytest.FixtureRequest, server: Server) -> Outcome:
    """The whole table, walked once against one mount of one server."""
    stateless, stateful = bases(server, request.param)
    return asyncio.run(run_check(None, stateless, stateful))


def test_the_table_is_the_same_on_every_walk(walked: Outcome) -> None:
    assert len(TABLE) == len(set(TABLE)), "two rows of one side share a title"
    assert [(row.side, row.title) for row in walked.rows] == TABLE


@pytest.mark.parametrize(("side", "title"), TABLE, ids=[f"{s}: {t}" for s, t in TABLE])
def test_row(walked: Outcome, side: Side, title: str) -> None:
    row: Row = next(row for row in walked.rows if (row.side, row.title) == (side, title))
    assert row.passed, f"#{row.number} {row.request}: expected {row.expected}, got {row.got}\n" + (
        "\n".join(row.problems)
    )
