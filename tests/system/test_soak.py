"""`statebridge soak` runs end to end against a real server: every request answered, every
acknowledged write found again, and the report says so. A two-second run, loopback only;
nothing here asserts a speed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support.servers import Server, clean_env


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(env={}, data_dir=tmp_path_factory.mktemp("soak")).start()
    yield server
    server.stop()


def test_a_short_soak_checks_every_write(target: Server) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "statebridge", "soak", "--duration", "2",
         "--connections", "4", "--target", target.url],
        capture_output=True, text=True, timeout=120, env=clean_env({}), check=False,
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "statebridge soak: 2 s, 4 connections, stateful mix, 1 instance (2 shared sessions)"
    ), result.stdout + result.stderr
    assert "; 5xx: 0; other non-200: 0; socket errors: 0" in lines[1], result.stdout
    for name in ("cart GET", "cart/add", "demonstrate", "session GET", "session PUT"):
        assert any(line.strip().startswith(name) for line in lines), (name, result.stdout)
    checked = next(line for line in lines if "acknowledged writes checked" in line)
    assert checked.endswith(": 0 lost or wrong"), checked
    verdict = lines[-1].strip()
    assert verdict in ("verdict: PASS", "verdict: FAIL"), result.stdout
    assert result.returncode == (0 if verdict == "verdict: PASS" else 1), result.stderr
