"""A real nginx in front of statebridge instances, its configuration rendered by
`statebridge deploy nginx` from the shipped template, on loopback ports of its own."""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import commands
from tests.support.servers import free_port

NGINX = shutil.which("nginx") or next(
    (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(path).exists()), None
)
# a rate limit far above what the tests send, so that it never interferes
NO_LIMIT = ["--rate", "5000r/s", "--burst", "5000"]


def installed_version() -> str:
    """The installed nginx's version (`nginx -v` prints `nginx version: nginx/1.22.1`), what
    the test renders are written for; the target version when no nginx is installed."""
    if NGINX is None:
        return "1.27"
    done = subprocess.run([NGINX, "-v"], capture_output=True, text=True, check=False)
    match = re.search(r"nginx/([0-9]+\.[0-9]+(?:\.[0-9]+)?)", done.stderr + done.stdout)
    assert match, f"cannot read the nginx version from {done.stderr!r}"
    return match.group(1)


def statebridge(*args: str) -> subprocess.CompletedProcess[str]:
    return commands.statebridge({}, *args)


def new_certs(directory: Path) -> Path:
    """A development certificate and key made in `directory` (`statebridge deploy certs`)."""
    done = statebridge("deploy", "certs", str(directory))
    assert done.returncode == 0, done.stderr
    assert "created" in done.stdout
    return directory


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(200):
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited early:\n{log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen on {port}:\n{log.read_text(errors='replace')}")


@dataclass
class Proxy:
    """One nginx process, its configuration rendered by `statebridge deploy nginx`."""

    prefix: Path
    upstreams: list[str]
    certs: Path
    limits: list[str] = field(default_factory=list)
    http_port: int = field(default_factory=free_port)
    https_port: int = field(default_factory=free_port)
    stateless_port: int = field(default_factory=free_port)
    stateful_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def conf(self) -> Path:
        return self.prefix / "nginx.conf"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def stateless_url(self) -> str:
        return f"http://127.0.0.1:{self.stateless_port}"

    @property
    def stateful_url(self) -> str:
        return f"http://127.0.0.1:{self.stateful_port}"

    def render(self) -> None:
        upstreams = [arg for upstream in self.upstreams for arg in ("--upstream", upstream)]
        done = statebridge(
            "deploy", "nginx", *upstreams,
            "--listen", "127.0.0.1",
            "--http-port", str(self.http_port),
            "--https-port", str(self.https_port),
            "--stateless-port", str(self.stateless_port),
            "--stateful-port", str(self.stateful_port),
            "--cert", str(self.certs / "cert.pem"),
            "--key", str(self.certs / "key.pem"),
            "--runtime-dir", str(self.prefix),
            "--nginx-version", installed_version(),
            *self.limits,
            "--out", str(self.conf),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    def start(self) -> Proxy:
        self.prefix.mkdir(parents=True, exist_ok=True)
        self.render()
        log = self.prefix / "nginx.out"
        command = [
            NGINX or "nginx",
            "-p", str(self.prefix),
            "-e", str(self.prefix / "logs" / "error.log"),
            "-c", str(self.conf),
            "-g", "daemon off;",
        ]  # fmt: skip
        with open(log, "ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        for port in (self.http_port, self.https_port, self.stateless_port, self.stateful_port):
            wait_for_port(port, self.process, log)
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


@contextlib.contextmanager
def proxy_to(ports: list[int], prefix: Path, certs: Path) -> Iterator[Proxy]:
    """A running nginx, without the rate limit, in front of these loopback ports."""
    upstreams = [f"127.0.0.1:{port}" for port in ports]
    running = Proxy(prefix=prefix, upstreams=upstreams, certs=certs, limits=NO_LIMIT).start()
    try:
        yield running
    finally:
        running.stop()
