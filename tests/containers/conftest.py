"""Fixtures of the container tests: the stand-in base images and the statebridge image built
from the unmodified Dockerfile, once per run. Without Docker (or docker-compose, or
debootstrap) every test here skips with the reason; under STATEBRIDGE_TEST_STRICT=1 (CI) the
skip is a failure."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.support.docker import STANDIN_SCRIPT, docker, engine_problem, image_size
from tests.support.recordings import ROOT

IMAGE = "statebridge:containers-test"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.containers)


@pytest.fixture(scope="session")
def engine() -> None:
    problem = engine_problem()
    if problem is not None:
        pytest.skip(problem)


@pytest.fixture(scope="session")
def standins(engine: None) -> dict[str, str]:
    """The stand-in base images (scripts/standin-images.sh; kept when they exist)."""
    start = time.monotonic()
    done = subprocess.run(
        ["bash", str(STANDIN_SCRIPT)], capture_output=True, text=True, timeout=1800, check=False
    )
    assert done.returncode == 0, f"{done.stderr}\n{done.stdout}"
    python, postgres, redis, nginx = done.stdout.split()
    print(f"\nstand-in images ready in {time.monotonic() - start:.1f} s")
    return {"python": python, "postgres": postgres, "redis": redis, "nginx": nginx}


@pytest.fixture(scope="session")
def image(standins: dict[str, str]) -> str:
    """The statebridge image, built from the Dockerfile as it is, on the python stand-in."""
    start = time.monotonic()
    python = f"PYTHON_IMAGE={standins['python']}"
    # host networking: apt-get and pip inside the build reach their mirrors as the host does
    docker(
        "build", "--network", "host", "--build-arg", python, "-t", IMAGE, str(ROOT), timeout=1800
    )
    size = image_size(IMAGE)
    print(f"\nimage {IMAGE} built in {time.monotonic() - start:.1f} s, {size / 1e6:.1f} MB")
    return IMAGE
