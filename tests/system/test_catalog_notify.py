"""PostgreSQL's LISTEN/NOTIFY channel for the catalog cache: a writer answers only once every
other listening instance has the change (it acknowledged it), not merely once the writer's
own listener heard its echo."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import asyncpg  # type: ignore[import-untyped]
import pytest

from statebridge.catalog import cache
from statebridge.catalog.cache import PgNotify
from tests.support.databases import drop_pg_database, new_pg_database

pytestmark = pytest.mark.services


@pytest.fixture
def dsn() -> Iterator[str]:
    try:
        name, url = new_pg_database()
    except Exception as exc:
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    yield url
    drop_pg_database(name)


async def test_every_listener_has_the_change_when_announce_returns(dsn: str) -> None:
    writer, readers = PgNotify(dsn), [PgNotify(dsn) for _ in range(3)]
    for channel in (writer, *readers):
        await channel.start()
    try:
        for _ in range(20):
            before = [reader.stamp() for reader in readers]
            await writer.announce()
            after = [reader.stamp() for reader in readers]
            assert all(a != b for a, b in zip(after, before, strict=True)), (before, after)
    finally:
        for channel in (writer, *readers):
            await channel.close()


async def test_a_listener_that_never_acknowledges_holds_the_writer_only_so_long(
    dsn: str,
) -> None:
    writer, reader = PgNotify(dsn), PgNotify(dsn)
    await writer.start()
    await reader.start()
    silent = await asyncpg.connect(dsn, server_settings={"application_name": PgNotify.APPLICATION})
    await silent.add_listener(PgNotify.CHANNEL, lambda *_: None)
    try:
        started = time.monotonic()
        before = reader.stamp()
        await writer.announce()
        waited = time.monotonic() - started
        assert reader.stamp() != before
        # one listener short of every acknowledgement: the writer waited, and gave up
        assert cache.ACK_WAIT * 0.9 <= waited < cache.ACK_WAIT + 2, waited
    finally:
        await silent.close()
        await writer.close()
        await reader.close()
        await asyncio.sleep(0)
