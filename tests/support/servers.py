"""Real `statebridge serve` processes on free loopback ports, for tests that speak HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

CLEAN_PREFIXES = ("STATEBRIDGE_", "DATABASE_URL", "REDIS_URL", "DEBUG")


# One registry of ports for the tests and the fault tools: below the kernel's ephemeral
# range, never handed out twice (statebridge/ops/faults/servers.py).
from statebridge.ops.faults.servers import free_port  # noqa: E402


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(CLEAN_PREFIXES)}
    env.update(extra)
    return env


def stored_key(session_id: str, env: dict[str, str], data_dir: Path) -> str:
    """The key a server on `env` and `data_dir` keeps this session under, as the stores do
    (statebridge/db/sessionkeys.py): what Redis keys and the sessions table hold."""
    from statebridge.config import Settings
    from statebridge.db.sessionkeys import session_keys

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data_dir,
        database_url=env.get("DATABASE_URL", ""),
        session_secret=env.get("STATEBRIDGE_SESSION_SECRET"),  # type: ignore[arg-type]
    )
    return session_keys(settings).key(session_id)


class PortTaken(RuntimeError):
    """A server could not listen: another process took one of its ports first."""


@dataclass
class Server:
    """One statebridge process with its three listeners."""

    env: dict[str, str]
    data_dir: Path
    args: list[str] = field(default_factory=list)
    port: int = 0  # 0: a free port is picked (and picked again if taken at start)
    stateless_port: int = 0
    stateful_port: int = 0

    PORT_FIELDS = ("port", "stateless_port", "stateful_port")

    def __post_init__(self) -> None:
        self._picked = [name for name in self.PORT_FIELDS if getattr(self, name) == 0]
        self._pick_ports()

    def _pick_ports(self) -> None:
        for name in self._picked:
            setattr(self, name, free_port())

    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stateless_url(self) -> str:
        return f"http://127.0.0.1:{self.stateless_port}"

    @property
    def stateful_url(self) -> str:
        return f"http://127.0.0.1:{self.stateful_port}"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "statebridge", "serve",
            "--port", str(self.port),
            "--stateless-port", str(self.stateless_port),
            "--stateful-port", str(self.stateful_port),
            *self.args,
        ]  # fmt: skip

    def start(self, timeout: float = 30.0) -> Server:
        """Start and wait for /health; a picked port found taken is picked again."""
        for _ in range(3):
            try:
                return self._start(timeout)
            except PortTaken:
                if not self._picked:
                    raise
                self._pick_ports()
        return self._start(timeout)

    def _start(self, timeout: float) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"server-{self.port}.log"
        env = clean_env({"STATEBRIDGE_DATA_DIR": str(self.data_dir), **self.env})
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if "address already in use" in self.log():
                    raise PortTaken(f"statebridge could not bind:\n{self.log()}")
                raise RuntimeError(f"statebridge exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"statebridge did not answer within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stored_key(self, session_id: str) -> str:
        """The key this server keeps the session under."""
        return stored_key(session_id, self.env, self.data_dir)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(5)
