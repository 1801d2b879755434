"""The Docker engine and docker-compose, driven as a user would, for the container tests.

Every container runs on the host's network (`--network host`) and listens on 127.0.0.1 on a
free port: no test traffic goes to a bridge address. Containers are named `sbtest-...` and
removed by name afterwards.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.recordings import ROOT
from tests.support.servers import free_port

# Debian's client matches Debian's engine; another `docker` on PATH is the fallback.
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else shutil.which("docker")
COMPOSE = shutil.which("docker-compose")
STANDIN_SCRIPT = ROOT / "scripts" / "standin-images.sh"


def docker(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [DOCKER or "docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def engine_problem() -> str | None:
    """Why the container tests cannot run here, or None when they can."""
    if DOCKER is None:
        return "docker is not installed (scripts/ci-install-docker.sh installs it)"
    if COMPOSE is None:
        return "docker-compose is not installed (scripts/ci-install-docker.sh installs it)"
    if shutil.which("debootstrap") is None and not Path("/usr/sbin/debootstrap").exists():
        return "debootstrap is not installed (scripts/ci-install-docker.sh installs it)"
    try:
        done = docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the Docker engine does not answer: {exc}"
    if done.returncode != 0:
        reason = done.stderr.strip()
        return (
            f"the Docker engine is not running (scripts/ci-install-docker.sh starts it): {reason}"
        )
    return None


def inspect(container: str) -> dict[str, object]:
    data: list[dict[str, object]] = json.loads(docker("inspect", container).stdout)
    return data[0]


def health(container: str) -> str:
    """`starting`, `healthy` or `unhealthy`, as the engine judges the image's HEALTHCHECK."""
    return docker("inspect", "--format", "{{.State.Health.Status}}", container).stdout.strip()


def wait_health(container: str, wanted: str, timeout: float) -> float:
    """Seconds until the container's health is `wanted`; fails with its log otherwise."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if health(container) == wanted:
            return time.monotonic() - start
        time.sleep(0.5)
    logs = docker("logs", "--tail", "40", container, check=False)
    raise AssertionError(
        f"{container} is {health(container)!r}, not {wanted!r}, after {timeout:.0f} s:\n"
        f"{logs.stdout}{logs.stderr}"
    )


def image_size(image: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", image).stdout.strip())


@dataclass
class Replica:
    """One statebridge container on the host's network, on 127.0.0.1:port (its own Phase 1
    listeners off: nginx serves Phase 1's ports from the combined one)."""

    image: str
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    name: str = field(default_factory=lambda: f"sbtest-{uuid.uuid4().hex[:8]}")
    health_interval: str = "2s"  # the image's command and thresholds, checked more often

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Replica:
        env = {
            "STATEBRIDGE_HOST": "127.0.0.1",
            "STATEBRIDGE_PORT": str(self.port),
            "STATEBRIDGE_STATELESS_PORT": "0",
            "STATEBRIDGE_STATEFUL_PORT": "0",
            **self.env,
        }
        pairs = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
        docker(
            "run", "-d", "--name", self.name, "--network", "host",
            "--health-interval", self.health_interval, "--stop-timeout", "25",
            *pairs, self.image,
        )  # fmt: skip
        return self

    def wait_ready(self, timeout: float = 90) -> None:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            state = inspect(self.name)["State"]
            assert isinstance(state, dict)
            if not state.get("Running"):
                break
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"{self.name} did not become ready:\n{self.logs()}")

    def instance_id(self) -> str:
        return httpx.get(f"{self.url}/health", timeout=10).headers["x-instance-id"]

    def logs(self) -> str:
        done = docker("logs", "--tail", "60", self.name, check=False)
        return done.stdout + done.stderr

    def stop(self, timeout: float = 60) -> None:
        docker("stop", self.name, check=False, timeout=timeout)

    def remove(self) -> None:
        docker("rm", "-f", "-v", self.name, check=False)
