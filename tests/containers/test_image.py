"""The statebridge image built from the unmodified Dockerfile: its size, its user, its health
check against a ready app and against a stopped PostgreSQL, and its graceful stop."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.docker import Replica, docker, image_size, inspect, wait_health
from tests.support.private_services import PrivatePostgres, PrivateRedis, private_stack


def test_the_image_is_slim_and_runs_as_uid_10001(image: str) -> None:
    size = image_size(image)
    print(f"\nimage size: {size} bytes ({size / 1e6:.1f} MB)")
    assert size < 400e6, f"the image grew to {size / 1e6:.1f} MB"
    config = inspect(image)["Config"]
    assert isinstance(config, dict)
    assert config["User"] == "statebridge:statebridge"
    assert docker("run", "--rm", "--network", "host", image, "id", "-u").stdout.strip() == "10001"
    assert "/health/ready" in " ".join(config["Healthcheck"]["Test"])
    # the runtime stage has no compilers: they stay in the build stage
    compiler = docker(
        "run", "--rm", "--network", "host", image, "sh", "-c", "command -v gcc cc", check=False
    )
    assert compiler.returncode != 0, compiler.stdout


@pytest.fixture
def private() -> Iterator[tuple[PrivatePostgres, PrivateRedis]]:
    """A PostgreSQL and a Redis of this test's own: it stops the PostgreSQL."""
    with private_stack() as pair:
        yield pair


def test_health_follows_postgres_and_the_stop_is_graceful(
    image: str, private: tuple[PrivatePostgres, PrivateRedis]
) -> None:
    postgres, redis = private
    replica = Replica(
        image, {"DATABASE_URL": postgres.url(), "REDIS_URL": redis.url, "STATEBRIDGE_MIGRATE": "1"}
    )
    try:
        replica.start()
        took = wait_health(replica.name, "healthy", timeout=120)
        print(f"\nhealthy {took:.1f} s after start")
        # the server itself (PID 1, exec'd by the image's CMD) runs as statebridge
        assert docker("exec", replica.name, "stat", "-c", "%u", "/proc/1").stdout.strip() == "10001"

        postgres.stop("immediate")
        took = wait_health(replica.name, "unhealthy", timeout=90)
        print(f"unhealthy {took:.1f} s after PostgreSQL stopped")
        answer = httpx.get(f"{replica.url}/health/ready", timeout=10)
        assert answer.status_code == 503
        assert httpx.get(f"{replica.url}/health/live", timeout=10).status_code == 200

        postgres.start()
        took = wait_health(replica.name, "healthy", timeout=90)
        print(f"healthy again {took:.1f} s after PostgreSQL came back")

        start = time.monotonic()
        replica.stop()
        stopped = time.monotonic() - start
        state = inspect(replica.name)["State"]
        assert isinstance(state, dict)
        print(f"stopped in {stopped:.1f} s, exit code {state['ExitCode']}")
        assert state["ExitCode"] == 0, replica.logs()
        assert stopped < 20, replica.logs()
    finally:
        replica.remove()
