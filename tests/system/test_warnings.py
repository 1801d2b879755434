"""Python warnings never reach stderr as free text: they are log lines (JSON by default),
from the server and from the commands alike; and statebridge itself raises none."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.servers import Server, clean_env

# A library that warns at an awkward moment: `statebridge` as the CLI runs it, with one
# function wrapped to call warnings.warn first. argv: MODULE FUNCTION then the command line.
WARNING_TEXT = "a library warns: mind the gap"
WARN_THEN_RUN = f"""
import asyncio, importlib, sys, warnings

module = importlib.import_module(sys.argv[1])
original = getattr(module, sys.argv[2])

def warn():
    warnings.warn({WARNING_TEXT!r}, UserWarning, stacklevel=2)

if asyncio.iscoroutinefunction(original):
    async def wrapped(*args, **kwargs):
        warn()
        return await original(*args, **kwargs)
else:
    def wrapped(*args, **kwargs):
        warn()
        return original(*args, **kwargs)

setattr(module, sys.argv[2], wrapped)
from statebridge.cli.main import app
app(sys.argv[3:], prog_name="statebridge")
"""


def warning_lines(lines: list[str]) -> list[dict[str, Any]]:
    """Every line parsed as JSON (any other line fails the test); the warnings among them."""
    entries = [json.loads(line) for line in lines if line.strip()]
    for entry in entries:
        assert {"ts", "level", "logger"} <= set(entry), entry
    return [entry for entry in entries if entry["logger"] == "py.warnings"]


def test_the_redis_client_is_built_without_a_warning() -> None:
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    from statebridge.wiring.services import connect_redis

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = connect_redis("redis://127.0.0.1:6379/5")
    assert [str(warning.message) for warning in caught] == []
    retry = client.get_retry()
    assert type(retry) is Retry  # the asyncio one, given as such rather than converted
    assert retry.get_retries() == 1  # fail fast: one retry, no backoff, then the fallback
    assert isinstance(retry._backoff, NoBackoff)
    pool = client.connection_pool
    assert pool.connection_kwargs["retry"] is retry


def test_connect_redis_passes_with_warnings_as_errors() -> None:
    code = (
        "from statebridge.wiring.services import connect_redis\n"
        "connect_redis('redis://127.0.0.1:6379/5')\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        env=clean_env({}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@dataclass
class WarningServer(Server):
    """`statebridge serve` whose build_services warns before it builds."""

    def command(self) -> list[str]:
        serve = super().command()[3:]  # after `python -m statebridge`
        module, function = "statebridge.wiring.services", "build_services"
        return [sys.executable, "-c", WARN_THEN_RUN, module, function, *serve]


def test_a_warning_in_the_server_is_a_json_log_line(tmp_path: Path) -> None:
    server = WarningServer(env={}, data_dir=tmp_path).start()
    try:
        assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
    finally:
        server.stop(signal.SIGTERM)
    found = warning_lines(server.log().splitlines())
    assert len(found) == 1, server.log()
    assert found[0]["level"] == "warning"
    assert found[0]["message"] == f"UserWarning: {WARNING_TEXT}"
    assert ":" in found[0]["source"]


def warn_in_cli(
    module: str, function: str, *args: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WARN_THEN_RUN, module, function, *args],
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_warning_in_a_command_is_a_json_log_line(tmp_path: Path) -> None:
    env = {"STATEBRIDGE_DATA_DIR": str(tmp_path)}
    result = warn_in_cli("statebridge.db.schema", "upgrade", "db", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "database at head"
    found = warning_lines(result.stderr.splitlines())
    assert [entry["message"] for entry in found] == [f"UserWarning: {WARNING_TEXT}"]


def test_a_warning_follows_the_text_log_format(tmp_path: Path) -> None:
    env = {"STATEBRIDGE_DATA_DIR": str(tmp_path), "STATEBRIDGE_LOG_FORMAT": "text"}
    result = warn_in_cli("statebridge.db.schema", "upgrade", "db", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].endswith(f" WARNING py.warnings: UserWarning: {WARNING_TEXT}")
