"""Python warnings: statebridge itself raises none."""

from __future__ import annotations

import subprocess
import sys
import warnings

from tests.servers import clean_env


def test_the_redis_client_is_built_without_a_warning() -> None:
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    from statebridge.services import connect_redis

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
        "from statebridge.services import connect_redis\n"
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
