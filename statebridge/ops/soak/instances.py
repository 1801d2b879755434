"""The instances under load: spawned locally or given by URL, and their memory over time."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from statebridge.ops.http import Connection, SocketError

SAMPLE_EVERY = 5.0  # seconds between RSS samples; shorter runs sample 12 times


@dataclass
class Instance:
    url: str
    process: subprocess.Popen[bytes] | None = None
    rss: list[tuple[float, int]] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(count: int, migrate: bool, log_dir: Path) -> list[Instance]:
    """Local instances of this statebridge, sharing the configured database and Redis."""
    instances = []
    for index in range(count):
        port = free_port()
        command = [sys.executable, "-m", "statebridge", "serve", "--port", str(port),
                   "--stateless-port", "0", "--stateful-port", "0"]  # fmt: skip
        if migrate and index == 0:
            command.append("--migrate")
        env = {**os.environ, "STATEBRIDGE_INSTANCE_ID": f"soak-{chr(97 + index)}"}
        log_path = log_dir / f"instance-{index}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        instances.append(Instance(f"http://127.0.0.1:{port}", process))
        try:
            wait_ready(instances[-1])
        except RuntimeError as exc:
            stop_all(instances)
            raise RuntimeError(f"{exc} (its log: {log_path})") from None
    return instances


def wait_ready(instance: Instance, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if instance.process is not None and instance.process.poll() is not None:
            raise RuntimeError(f"instance {instance.url} exited during start")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{instance.url}/health/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"instance {instance.url} not ready after {timeout:.0f}s")


def stop_all(instances: list[Instance]) -> None:
    for instance in instances:
        if instance.process is not None and instance.process.poll() is None:
            instance.process.send_signal(signal.SIGTERM)
    for instance in instances:
        if instance.process is not None:
            try:
                instance.process.wait(30)
            except subprocess.TimeoutExpired:
                instance.process.kill()


async def sample_rss(
    instances: list[Instance], stop: asyncio.Event, started: float, every: float = SAMPLE_EVERY
) -> None:
    connections = [Connection(instance.url) for instance in instances]
    while True:
        for instance, connection in zip(instances, connections, strict=True):
            with contextlib.suppress(SocketError, ValueError, KeyError):
                answer = await connection.request("GET", "/health")
                rss = int(answer.json()["data"]["memory"]["rss"])
                instance.rss.append((time.monotonic() - started, rss))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        if stop.is_set():
            break
    for connection in connections:
        await connection.close()
