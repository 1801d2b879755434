"""Private Redis topologies on free loopback ports: a Sentinel set (a master, a replica and
three sentinels) and a Cluster (three primaries, three replicas, made with
`redis-cli --cluster create`). Nothing is kept on disk; every process is stopped by its id
and the temporary directory removed. A test skips (fails under strict mode) without
redis-server or redis-cli.

Both are tuned to fail over quickly: a sentinel calls a master down after 1 s without an
answer, a cluster node after a node timeout of 1 s."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from statebridge.ops.faults.servers import wait_for_port
from tests.support.servers import free_port
from tests.support.waiting import wait_until

SERVICE = "statebridge"
NO_DISK = ["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"]
REDIS_DOWN = (redis.RedisError, OSError)  # what a check may raise while a topology settles


def binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (Debian's redis-server and redis-tools packages)")
    return found


def in_sync(node: Node) -> bool:
    """The master has a replica that finished its sync and takes the stream."""
    info = node.client().info("replication")
    return any(info.get(f"slave{n}", {}).get("state") == "online" for n in range(4))


@dataclass
class Node:
    """One redis-server process (a data node or a sentinel)."""

    directory: Path
    args: list[str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Node:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                [binary("redis-server"), *self.args, "--port", str(self.port),
                 "--dir", str(self.directory)],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.directory,
            )  # fmt: skip
        wait_for_port(self.port)
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class PrivateSentinelSet:
    """A master, a replica, and three sentinels watching them as `statebridge`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.master = Node(root / "master", NO_DISK)
        self.replica = Node(root / "replica", NO_DISK)
        self.sentinels: list[Node] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}"

    def start(self) -> PrivateSentinelSet:
        self.master.start()
        self.replica.args = [*NO_DISK, "--replicaof", "127.0.0.1", str(self.master.port)]
        self.replica.start()
        for number in range(3):
            directory = self.root / f"sentinel{number}"
            directory.mkdir(parents=True)
            config = directory / "sentinel.conf"  # a sentinel rewrites its own file
            config.write_text(
                "bind 127.0.0.1\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            node = Node(directory, [str(config), "--sentinel"])
            self.sentinels.append(node.start())
        wait_until(self.ready, "the sentinels seeing the replica and each other", 30, REDIS_DOWN)
        return self

    def ready(self) -> bool:
        replica = self.replica.client().info("replication")
        if replica.get("master_link_status") != "up":
            return False
        for node in self.sentinels:
            client = node.client()
            if len(client.sentinel_slaves(SERVICE)) != 1:
                return False
            if len(client.sentinel_sentinels(SERVICE)) != 2:
                return False
        return True

    def master_port(self) -> int:
        """The master's port as a sentinel names it now."""
        for node in self.sentinels:
            if node.alive:
                with contextlib.suppress(redis.RedisError):
                    _host, port = node.client().sentinel_get_master_addr_by_name(SERVICE)
                    return int(port)
        raise RuntimeError("no sentinel answers")

    def data_nodes(self) -> list[Node]:
        return [self.master, self.replica]

    def stop(self) -> None:
        for node in [*self.sentinels, self.replica, self.master]:
            node.stop()


class PrivateCluster:
    """Six `--cluster-enabled yes` nodes joined by `redis-cli --cluster create` into three
    primaries with a replica each."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.nodes: list[Node] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)
        return f"redis+cluster://{hosts}"

    def start(self) -> PrivateCluster:
        cli = binary("redis-cli")
        for number in range(6):
            # the bus port too is picked free (by default it is the port + 10000)
            args = [*NO_DISK, "--cluster-enabled", "yes", "--cluster-node-timeout", "1000",
                    "--cluster-config-file", "nodes.conf",
                    "--cluster-port", str(free_port())]  # fmt: skip
            self.nodes.append(Node(self.root / f"node{number}", args).start())
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        wait_until(self.ready, "the cluster up", 30, REDIS_DOWN)
        return self

    def ready(self) -> bool:
        """The cluster is ok, and each primary has its replica in sync (`online`)."""
        for node in self.nodes:
            if not node.alive:
                continue
            info = node.client().execute_command("CLUSTER INFO")
            if info.get("cluster_state") != "ok":
                return False
        primaries = self.primaries()
        return len(primaries) == 3 and all(in_sync(node) for node in primaries)

    def roles(self) -> dict[int, str]:
        roles = {}
        for node in self.nodes:
            if node.alive:
                with contextlib.suppress(redis.RedisError):
                    roles[node.port] = node.client().info("replication")["role"]
        return roles

    def primaries(self) -> list[Node]:
        roles = self.roles()
        return [node for node in self.nodes if roles.get(node.port) == "master"]

    def data_nodes(self) -> list[Node]:
        return self.nodes

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@contextlib.contextmanager
def topology(kind: str) -> Iterator[PrivateSentinelSet | PrivateCluster]:
    """A started Sentinel set or Cluster, stopped and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix=f"sb-{kind}-"))
    made = PrivateSentinelSet(root) if kind == "sentinel" else PrivateCluster(root)
    try:
        yield made.start()
    finally:
        made.stop()
        shutil.rmtree(root, ignore_errors=True)
