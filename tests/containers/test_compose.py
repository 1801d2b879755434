"""The compose files themselves: `docker-compose up -d --build` of docker-compose.yml and of
docker-compose.prod.yml, each with its test override (compose.override.yml,
compose.prod.override.yml: the stand-in images, host networking, free loopback ports; read
their headers), the app migrated and serving through nginx, and `down -v` leaving nothing."""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.docker import COMPOSE, docker, health, inspect
from tests.support.nginx import statebridge
from tests.support.recordings import ROOT
from tests.support.servers import free_port

HERE = Path(__file__).parent
PROD_SECRETS = {
    "POSTGRES_USER": "sbadmin",
    "POSTGRES_PASSWORD": "s3cret-pw",
    "REDIS_PASSWORD": "r3dis-pw",
    "STATEBRIDGE_SESSION_SECRET": "a-session-secret-of-32-characters",
}


@dataclass
class Stack:
    """One compose project, its name unique to this test, on free loopback ports."""

    files: list[Path]
    standins: dict[str, str]
    work: Path
    prod: bool = False
    secrets: dict[str, str] = field(default_factory=dict)
    name: str = field(default_factory=lambda: f"sbtest{uuid.uuid4().hex[:8]}")
    ports: dict[str, int] = field(
        default_factory=lambda: {
            key: free_port()
            for key in ("pg", "redis", "app", "http", "https", "stateless", "stateful")
        }
    )

    def env(self, secrets: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("POSTGRES_", "REDIS_", "STATEBRIDGE_"))}  # fmt: skip
        env.update(secrets)
        env.update(
            {
                "SBTEST_PYTHON_IMAGE": self.standins["python"],
                "SBTEST_POSTGRES_IMAGE": self.standins["postgres"],
                "SBTEST_REDIS_IMAGE": self.standins["redis"],
                "SBTEST_NGINX_IMAGE": self.standins["nginx"],
                "SBTEST_APP_IMAGE": "statebridge:compose-test",
                "SBTEST_PG_PORT": str(self.ports["pg"]),
                "SBTEST_REDIS_PORT": str(self.ports["redis"]),
                "SBTEST_APP_PORT": str(self.ports["app"]),
                "SBTEST_CERTS": str(self.work / "certs"),
                "SBTEST_NGINX_CONF": str(self.work / "nginx.conf"),
                "SBTEST_NGINX_LOGS": str(self.work / "logs"),
            }
        )
        return env

    def compose(self, *args: str, secrets: dict[str, str] | None = None,
                timeout: float = 900) -> subprocess.CompletedProcess[str]:  # fmt: skip
        files = [arg for path in self.files for arg in ("-f", str(path))]
        return subprocess.run(
            [COMPOSE or "docker-compose", "-p", self.name, *files, *args],
            cwd=ROOT,
            env=self.env(self.secrets if secrets is None else secrets),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def render_nginx(self) -> None:
        for sub in ("certs", "logs"):
            (self.work / sub).mkdir(parents=True, exist_ok=True)
        done = statebridge(
            "deploy",
            "nginx",
            *(["--prod"] if self.prod else []),
            "--upstream",
            f"127.0.0.1:{self.ports['app']}",
            "--listen",
            "127.0.0.1",
            "--http-port",
            str(self.ports["http"]),
            "--https-port",
            str(self.ports["https"]),
            "--stateless-port",
            str(self.ports["stateless"]),
            "--stateful-port",
            str(self.ports["stateful"]),
            "--nginx-version",
            self.nginx_version(),
            "--out",
            str(self.work / "nginx.conf"),
        )
        assert done.returncode == 0, done.stderr

    def nginx_version(self) -> str:
        """The version of the nginx image in use (the stand-in is Debian's nginx 1.22)."""
        done = docker("run", "--rm", "--network", "host", self.standins["nginx"], "nginx", "-v")
        match = re.search(r"nginx/([0-9.]+)", done.stdout + done.stderr)
        assert match, done.stderr
        return match.group(1)

    def container(self, service: str) -> str:
        return f"{self.name}_{service}_1"

    def leftovers(self) -> dict[str, list[str]]:
        label = f"label=com.docker.compose.project={self.name}"
        return {
            kind: docker(*command, "--filter", label, "--format", "{{.Names}}" if kind ==
                         "containers" else "{{.Name}}").stdout.split()
            for kind, command in (("containers", ("ps", "-a")), ("volumes", ("volume", "ls")),
                                  ("networks", ("network", "ls")))
        }  # fmt: skip

    def logs(self) -> str:
        done = self.compose("logs", "--no-color", "--tail", "30", timeout=60)
        return done.stdout[-6000:] + done.stderr[-2000:]


def wait_https(url: str, stack: Stack, timeout: float = 240) -> httpx.Response:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            answer = httpx.get(url, verify=False, timeout=5)
            if answer.status_code == 200:
                return answer
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise AssertionError(f"{url} did not answer 200 in {timeout:.0f} s:\n{stack.logs()}")


@pytest.fixture
def stack_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def dev(standins: dict[str, str], image: str, stack_dir: Path) -> Iterator[Stack]:
    stack = Stack([ROOT / "docker-compose.yml", HERE / "compose.override.yml"], standins, stack_dir)
    stack.render_nginx()
    yield stack
    stack.compose("down", "-v", "--remove-orphans", timeout=180)


def test_compose_stack_migrates_serves_through_nginx_and_leaves_nothing(dev: Stack) -> None:
    start = time.monotonic()
    up = dev.compose("up", "-d", "--build")
    assert up.returncode == 0, f"{up.stdout}\n{up.stderr}\n{dev.logs()}"
    https = f"https://127.0.0.1:{dev.ports['https']}"
    answer = wait_https(f"{https}/health/ready", dev)
    print(f"\ncompose stack up and ready through nginx in {time.monotonic() - start:.1f} s")
    assert answer.headers["x-instance-id"]
    assert health(dev.container("app")) == "healthy"
    assert health(dev.container("postgres")) == "healthy"
    assert health(dev.container("redis")) == "healthy"
    certs = inspect(dev.container("certs"))["State"]
    assert isinstance(certs, dict) and certs["ExitCode"] == 0
    # migrated by the app's own `serve --migrate` (STATEBRIDGE_MIGRATE=1 in the compose file)
    current = docker("exec", dev.container("app"), "statebridge", "db", "current", "--json")
    assert json.loads(current.stdout)["up_to_date"] is True, current.stdout

    with httpx.Client(
        verify=ssl.create_default_context(cafile=dev.work / "certs" / "cert.pem"), timeout=30
    ) as client:
        created = client.post(f"{https}/api/stateful/session", json={"userId": "user001"})
        assert created.status_code == 200, created.text
        sid = created.headers["session-id"]
        added = client.post(
            f"{https}/api/stateful/cart/add",
            headers={"Session-ID": sid},
            json={"productId": "prod001", "quantity": 2},
        )
        assert added.status_code == 200, added.text
        legacy = client.get(
            f"http://127.0.0.1:{dev.ports['stateful']}/cart", headers={"Session-ID": sid}
        )
        assert legacy.json()["data"]["cart"]["items"][0]["quantity"] == 2
        redirect = client.get(f"http://127.0.0.1:{dev.ports['http']}/health")
        assert redirect.status_code == 301

    before = dev.leftovers()
    assert len(before["containers"]) == 5, before  # postgres, redis, app, certs, nginx
    assert sorted(before["volumes"]) == [f"{dev.name}_postgres_data", f"{dev.name}_redis_data"]
    down = dev.compose("down", "-v", timeout=180)
    assert down.returncode == 0, down.stderr
    assert dev.leftovers() == {"containers": [], "volumes": [], "networks": []}


@pytest.fixture
def prod(standins: dict[str, str], image: str, stack_dir: Path) -> Iterator[Stack]:
    stack = Stack(
        [ROOT / "docker-compose.prod.yml", HERE / "compose.prod.override.yml"],
        standins,
        stack_dir,
        prod=True,
        secrets=PROD_SECRETS,
    )
    stack.render_nginx()
    # production brings its own certificate (docs/deployment.md); here, a self-signed one
    made = statebridge("deploy", "certs", str(stack_dir / "certs"))
    assert made.returncode == 0, made.stderr
    yield stack
    stack.compose("down", "-v", "--remove-orphans", timeout=180)


def test_prod_stack_refuses_to_start_without_its_secrets_and_starts_with_them(prod: Stack) -> None:
    for missing in PROD_SECRETS:
        partial = {key: value for key, value in PROD_SECRETS.items() if key != missing}
        refused = prod.compose("up", "-d", "--no-build", secrets=partial, timeout=120)
        assert refused.returncode != 0
        assert f"set {missing}" in refused.stderr, refused.stderr
        assert prod.leftovers()["containers"] == []

    start = time.monotonic()
    # `up` of everything behind nginx (postgres, redis, migrate, app); nginx publishes ports,
    # an error on the host's network, so it runs as the same service without them (`run`)
    up = prod.compose("up", "-d", "--build", "app")
    assert up.returncode == 0, f"{up.stdout}\n{up.stderr}\n{prod.logs()}"
    nginx = prod.compose("run", "-d", "--no-deps", "nginx")
    assert nginx.returncode == 0, f"{nginx.stdout}\n{nginx.stderr}"
    answer = wait_https(f"https://127.0.0.1:{prod.ports['https']}/health/ready", prod)
    print(f"\nproduction stack up and ready through nginx in {time.monotonic() - start:.1f} s")
    assert answer.json()["data"]["status"] == "ready"
    migrate = inspect(prod.container("migrate"))["State"]
    assert isinstance(migrate, dict) and migrate["ExitCode"] == 0
    # Redis requires its password: without it, the stack's Redis refuses
    bare = docker(
        "exec",
        "-e",
        "REDISCLI_AUTH=",
        prod.container("redis"),
        "redis-cli",
        "-p",
        str(prod.ports["redis"]),
        "get",
        "x",
        check=False,
    )
    assert "NOAUTH" in bare.stdout + bare.stderr
    down = prod.compose("down", "-v", timeout=180)
    assert down.returncode == 0, down.stderr
    assert prod.leftovers() == {"containers": [], "volumes": [], "networks": []}
