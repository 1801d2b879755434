"""The one place a Redis client is made from REDIS_URL: one server, a master found through
Sentinel, or a Redis Cluster.

- redis://, rediss://, unix://: redis-py's own URL handling.
- redis+sentinel://[:password@]host:port,host:port/<service>[/<db>]: the sentinels are asked
  for the master of <service>; a connection that fails is made again to whatever master the
  sentinels name then (redis-py's SentinelConnectionPool), so after a failover the next
  connection reaches the promoted replica. A connection to a master demoted to replica is
  dropped on its first READONLY answer.
- redis+cluster://[:password@]host:port[,host:port...]: redis-py's RedisCluster, started from
  those nodes; it learns the slot map from them and again after MOVED or a lost node.

Every client fails fast (the stores fall back to the database) instead of retrying for long.
The cluster client is typed as `Redis`: statebridge uses only commands both have, with every
multi-key command, transaction and script kept to one hash slot (see the session store).
"""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff, NoBackoff

from statebridge.config import RedisAddress, redis_address

FAIL_FAST: dict[str, Any] = {
    "socket_connect_timeout": 1.0,
    "socket_timeout": 2.0,
    "health_check_interval": 15,
}
REPLICA_WAIT_MS = 100  # a session write's WAIT for a replica (Sentinel, Cluster)


def connect_redis(url: str, max_connections: int = 200) -> Redis:
    """A client for REDIS_URL that fails fast instead of retrying.

    The retry policy is the asyncio one: redis-py 8 converts a synchronous `Retry` given to
    an asyncio client, with a UserWarning on stderr."""
    address = redis_address(url)
    options = {**FAIL_FAST, "max_connections": max_connections}
    if address.kind == "sentinel":
        sentinel = sentinel_of(address)
        master: SentinelMaster = sentinel.master_for(
            address.service,
            redis_class=SentinelMaster,
            db=address.db,
            username=address.username,
            password=address.password,
            retry=Retry(NoBackoff(), 1),
            **options,
        )
        master.sentinel_manager = sentinel
        return master
    if address.kind == "cluster":
        # a command whose node is lost is tried again on the refreshed slot map, briefly
        cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in address.hosts],
            username=address.username,
            password=address.password,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
            **options,
        )
        return cast(Redis, cluster)
    return Redis.from_url(url, retry=Retry(NoBackoff(), 1), **options)


class SentinelMaster(Redis):
    """The master's client, which closes its connections to the sentinels with its own."""

    sentinel_manager: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.sentinel_manager is not None:
            for client in self.sentinel_manager.sentinels:
                await client.aclose()
            self.sentinel_manager = None


def sentinel_of(address: RedisAddress) -> Sentinel:
    return Sentinel(
        list(address.hosts),
        sentinel_kwargs={**FAIL_FAST, "password": address.sentinel_password},
        socket_connect_timeout=FAIL_FAST["socket_connect_timeout"],
    )


def replica_wait_ms(url: str) -> int:
    """How long a session write waits for a replica to confirm it: REPLICA_WAIT_MS with
    Sentinel or Cluster (which promote a replica), 0 (never) with one Redis."""
    return 0 if redis_address(url).kind == "single" else REPLICA_WAIT_MS


def is_cluster(redis: Redis) -> bool:
    return isinstance(redis, RedisCluster)


async def subscriber_addresses(url: str) -> list[tuple[str, int]]:
    """Where a plain-socket SUBSCRIBE for REDIS_URL may go, to try in turn.

    Sentinel: the master the sentinels name now (a PUBLISH on the master reaches its
    replicas' subscribers too). Cluster: any node, since a classic PUBLISH is broadcast to
    every node of the cluster."""
    address = redis_address(url)
    if address.kind == "cluster":
        return list(address.hosts)
    if address.kind != "sentinel":
        return []
    sentinel = sentinel_of(address)
    try:
        host, port = await sentinel.discover_master(address.service)
        return [(str(host), int(port))]
    finally:
        for client in sentinel.sentinels:
            await client.aclose()
