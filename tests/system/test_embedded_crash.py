"""The embedded default keeps every acknowledged write across a crash of the application:
SIGKILL under cart-add load from 40 sessions, a restart on the same file, and every cart
holds at least what was acknowledged and at most what was sent (the fault suite's ledger,
statebridge/ops/faults/load.py). What a power loss may take is in docs/operations.md."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from statebridge.ops.faults.load import Ledger, add_to_carts, new_sessions, verify
from tests.support.servers import Server


def test_sigkill_under_load_loses_no_acknowledged_add(tmp_path: Path) -> None:
    server = Server(env={}, data_dir=tmp_path / "data").start()
    try:
        sessions = asyncio.run(new_sessions(server.url, 40))
        ledger = Ledger()

        async def run() -> None:
            stop = asyncio.Event()
            load = asyncio.create_task(add_to_carts([server.url], sessions, ledger, stop))
            await asyncio.sleep(3.0)
            server.stop(signal.SIGKILL)  # mid-load: adds in flight get no answer
            await asyncio.sleep(0.3)
            stop.set()
            await load

        asyncio.run(run())
        assert sum(ledger.acked.values()) > 200, ledger.acked  # the load really ran
        assert ledger.server_errors == 0, ledger.samples
        assert ledger.wrong_401 == 0
        server.start()
        verdict = asyncio.run(verify([server.url], sessions, ledger))
        assert (verdict.lost, verdict.invented, verdict.wrong_401) == (0, 0, 0), verdict
    finally:
        server.stop()
