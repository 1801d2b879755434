"""Confirming that a replica took a session's Redis write before the write is answered.

Redis replicates asynchronously: a snapshot the master acknowledged in its last moment may be
missing on the replica promoted after it, which would then answer the session's previous
data. With Sentinel or Cluster (the topologies that fail over), each pipeline of session
writes ends with `WAIT 1 <ms>` on every master it wrote to (in a cluster, the node owning the
keys; a WAIT counts the replicas that took this connection's writes). A master without a
connected replica has nothing to promote and is not waited on; `ROLE` tells how many it has,
asked again once a second at most, and at once after a WAIT that fell short.

The store drops the keys a replica did not confirm (`UNLINK`, then WAIT again), so the
session is read from PostgreSQL; a drop that is not confirmed either counts as a Redis
failure (ReplicaLagError): the keys are dropped again once Redis answers, from whichever
master it has then.
"""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ClusterError, RedisClusterException, RedisError

from statebridge.db.redisclient import is_cluster

ROLE_AGE = 1.0  # seconds a master's replica count is trusted


class ReplicaLagError(RedisError):
    """No replica confirmed a session write in time."""


# the master a WAIT goes to (None: the one a plain client talks to), and the positions of
# the keys it owns
Target = tuple[Any, list[int]]


class Replicas:
    def __init__(self, redis: Redis, wait_ms: int) -> None:
        self.redis = redis
        self.wait_ms = wait_ms
        self._known: dict[str, tuple[int, float]] = {}  # master -> replicas, when asked

    async def targets(self, keys: list[str]) -> list[Target]:
        """The masters owning these keys that have a replica to wait for."""
        groups: dict[str, tuple[Any, list[int]]] = {}
        cluster: Any = self.redis if is_cluster(self.redis) else None
        for position, key in enumerate(keys):
            try:
                node = cluster.get_node_from_key(key) if cluster is not None else None
            except RedisClusterException as exc:  # no slot map yet, or one being refreshed
                raise ClusterError(f"no master known for a session key: {exc}") from exc
            groups.setdefault(node.name if node else "", (node, []))[1].append(position)
        return [group for name, group in groups.items() if await self._replicas(name, group[0])]

    async def _replicas(self, name: str, node: Any) -> int:
        count, asked = self._known.get(name, (0, 0.0))
        if time.monotonic() - asked < ROLE_AGE:
            return count
        options = {"target_nodes": node} if node is not None else {}
        client: Any = self.redis  # a cluster's takes target_nodes
        role = await client.execute_command("ROLE", **options)
        count = len(role[2]) if role and role[0] in (b"master", "master") else 0
        self._known[name] = (count, time.monotonic())
        return count

    def queue_waits(self, pipe: Any, targets: list[Target]) -> None:
        for node, _ in targets:
            options = {"target_nodes": node} if node is not None else {}
            pipe.execute_command("WAIT", 1, self.wait_ms, **options)

    def unconfirmed(self, targets: list[Target], acks: list[Any]) -> list[int]:
        """The positions of the keys whose master's WAIT fell short."""
        short = []
        for (node, positions), acked in zip(targets, acks, strict=True):
            if int(acked) < 1:
                self._known.pop(node.name if node is not None else "", None)
                short.extend(positions)
        return sorted(short)

    async def drop(self, keys: list[str]) -> None:
        """UNLINK the keys and wait for a replica to take that; ReplicaLagError if none did."""
        if not keys:
            return
        targets = await self.targets(keys)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:  # one by one: in a cluster they are in different slots
                pipe.execute_command("UNLINK", key)
            self.queue_waits(pipe, targets)
            replies = await pipe.execute()
        if self.unconfirmed(targets, replies[len(keys) :]):
            raise ReplicaLagError(f"no replica confirmed a session write in {self.wait_ms} ms")
