"""`statebridge faults`: every fault once, under load, through the real command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.servers import clean_env

pytestmark = [pytest.mark.faults, pytest.mark.services]

FAULTS = [
    "redis-kill",
    "redis-flush",
    "redis-stall",
    "postgres-restart",
    "instance-kill",
    "instance-term",
]


def test_every_fault_once_loses_nothing_and_refuses_no_live_session() -> None:
    args = [arg for fault in FAULTS for arg in ("--fault", fault)]
    result = subprocess.run(
        [sys.executable, "-m", "statebridge", "faults", *args,
         "--sessions", "16", "--stall", "4", "--json"],
        env=clean_env({}), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout)
    rows = {row["fault"]: row for row in report["faults"]}
    assert list(rows) == FAULTS
    for fault, row in rows.items():
        assert row["runs"] == 1, fault
        assert row["acked"] > 0, (fault, row)  # the load really ran through the fault
        assert (row["lost"], row["invented"], row["wrong_401"], row["server_errors"]) == (
            0,
            0,
            0,
            0,
        ), (fault, row)
    assert report["ok"] is True and result.returncode == 0, result.stderr[-2000:]


def test_an_unknown_fault_is_one_line_and_exit_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "statebridge", "faults", "--fault", "meteor"],
        env=clean_env({}), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "statebridge: --fault 'meteor' is not accepted: one of redis-kill, redis-flush, "
        "redis-stall, postgres-restart, instance-kill, instance-term"
    ]
