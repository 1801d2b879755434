"""Sessions in Redis, written through to the PostgreSQL `sessions` row.

PostgreSQL is the durable copy and the point where writes are serialised: every write is one
atomic statement there (`data || patch`, a jsonb increment) that bumps the row's `version`.
Redis holds a snapshot of each live session in a hash `session:{<bucket>}:<id>`, where the id
is what the store is given: the keyed hash of the client's id (keyed.py), never the id itself:

    id, userId, version, data (the session data, JSON), createdMs, lastMs, expiresMs, maxMs, dbMs

(times in epoch milliseconds; `dbMs` is the expiry last written to PostgreSQL). A snapshot
replaces the hash only if its version is newer, so concurrent writers that reach Redis in a
different order than PostgreSQL still leave the newest state. Reads are one Lua call that
checks, slides and returns the session; PostgreSQL's `expires_at` is refreshed only when it
lags the true expiry by `refresh` or more.

A deleted session's hash becomes a tombstone (`gone`) for the idle lifetime, which no
snapshot overwrites: a write PostgreSQL took just before the delete, whose snapshot reaches
Redis just after it, would otherwise bring the session back, readable from Redis though
PostgreSQL no longer has it. Reads take a tombstone for a session Redis does not have.

Redis is a cache, never the only copy, and nothing in it is trusted to say that a session is
gone unless it says so itself: a session Redis does not have is looked up in PostgreSQL
(with `refresh` of grace, since that copy may lag) and cached again. A key outlives its
session by that grace, so an expired session is still recognised as expired by Redis; an
expired one is confirmed by PostgreSQL without grace (its copy never runs ahead of the true
expiry), so a session slid by PostgreSQL while Redis was stalled is not refused.

After a loss of Redis (FLUSHDB, a restart without persistence) one instance warms Redis up
again from PostgreSQL in the background (a Redis lock keeps it to one; the marker key
`sessions:epoch` says that it was done); that only saves the first reads their PostgreSQL
round trip and brings the live-session count back, correctness does not depend on it.
When Redis is unreachable every verb falls back to PostgreSQL, and the keys written
meanwhile are dropped from Redis when it returns (by a background task, without waiting for
a request, since until then another instance could read their previous snapshot).

With a topology that fails over (Sentinel, Cluster; `wait_ms` > 0) every snapshot and
tombstone waits for a replica to confirm it before the request is answered, and a key no
replica took is dropped, so that a promoted replica does not go on answering a session's
previous snapshot (replicas.py; docs/scaling.md, "A write the replica missed", says what
is left).

Every key a script, transaction or multi-key command touches shares one Redis Cluster hash
slot: a session belongs to one of BUCKETS buckets (a CRC32 of its id), and its hash and its
bucket's live index `sessions:live:{<bucket>}` carry the bucket as their hash tag. Sessions
spread over BUCKETS slots, so over every primary of a cluster; the count and the sweep visit
every bucket, in one pipelined round trip. Scripts are loaded again after NOSCRIPT (a Redis
restarted, or a replica promoted without them), and their keys are always passed as KEYS.
Before buckets, a session lived at `session:<id>` with one index `sessions:live`: an upgraded
instance neither reads nor writes those (they expire on their own; the old index is dropped
when Redis is warmed), and the new warm-up marker makes the first instance refill Redis from
PostgreSQL, the sessions' durable copy. Meanwhile a session Redis lacks is read from
PostgreSQL as always. Old and new versions should not serve one Redis together: each would
read its own, possibly stale, snapshots.

A database that is reset or restored gets a new id (`statebridge_meta.database_id`); an
instance that finds Redis holding sessions of another database id drops them at start.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError

from statebridge.batching import Coalescer
from statebridge.db.redislane import RedisLane
from statebridge.observability.metrics import METRICS
from statebridge.stores.sessions.base import Client, Lifetime, NewId, Session
from statebridge.stores.sessions.replicas import Replicas
from statebridge.stores.sessions.sql import SqlSessionStore
from statebridge.timeutil import utcnow

log = logging.getLogger("statebridge.sessions")
EPOCH = datetime(1970, 1, 1)
BUCKETS = 64
LEGACY_LIVE = "sessions:live"  # the one live index before buckets
MARKER = "sessions:epoch:buckets"
WARM_LOCK = "sessions:warm-lock"
DATABASE_ID = "sessions:database-id"  # the database whose sessions Redis holds
EXPIRED = object()  # Redis has the session, and it has expired

# KEYS[1] is a bucket's live index, KEYS[2..] the sessions of that bucket read together;
# ARGV: now, idle, grace (milliseconds). One reply per session: its fields (after sliding
# its expiry), 0 when Redis does not have it, or -1 when Redis has it and it has expired.
# A key outlives its session by `grace`, so an expired session is told from one never had.
TOUCH = """
local now = tonumber(ARGV[1])
local idle = tonumber(ARGV[2])
local grace = tonumber(ARGV[3])
local out = {}
for i = 2, #KEYS do
  local h = redis.call('HMGET', KEYS[i], 'maxMs', 'id', 'expiresMs')
  local reply = 0
  if h[2] then
    local hard = tonumber(h[1])
    if tonumber(h[3]) <= now or (hard and hard <= now) then
      reply = -1
    else
      local exp = now + idle
      if hard and hard < exp then exp = hard end
      local expires = string.format('%d', exp)
      redis.call('HSET', KEYS[i], 'lastMs', ARGV[1], 'expiresMs', expires)
      redis.call('PEXPIREAT', KEYS[i], exp + grace)
      redis.call('ZADD', KEYS[1], expires, h[2])
      reply = redis.call('HGETALL', KEYS[i])
    end
  end
  out[#out + 1] = reply
end
return out
"""

SNAPSHOT = """
if redis.call('HEXISTS', KEYS[1], 'gone') == 1 then return 0 end
local current = tonumber(redis.call('HGET', KEYS[1], 'version'))
if current and current >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'id', ARGV[2], 'userId', ARGV[3],
  'data', ARGV[4], 'createdMs', ARGV[5], 'lastMs', ARGV[6], 'expiresMs', ARGV[7],
  'maxMs', ARGV[8], 'dbMs', ARGV[9])
redis.call('PEXPIREAT', KEYS[1], tonumber(ARGV[7]) + tonumber(ARGV[10]))
redis.call('ZADD', KEYS[2], ARGV[7], ARGV[2])
return 1
"""

# KEYS[1] the session, KEYS[2] its bucket's live index; ARGV: its id, the idle lifetime (ms)
DESTROY = """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'gone', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""
SCRIPTS = (TOUCH, SNAPSHOT, DESTROY)  # loaded again into a Redis that lost them


MILLISECOND = timedelta(milliseconds=1)


def to_ms(moment: datetime) -> int:
    return int((moment - EPOCH) / MILLISECOND)


def from_ms(value: bytes | str | int) -> datetime:
    seconds, millis = divmod(int(value), 1000)  # positional ints: a third cheaper than ms=
    return EPOCH + timedelta(0, seconds, millis * 1000)


def bucket_of(session_id: str) -> int:
    return zlib.crc32(session_id.encode()) % BUCKETS


def session_key(session_id: str) -> str:
    return f"session:{{{bucket_of(session_id)}}}:{session_id}"


def live_key(bucket: int) -> str:
    return f"sessions:live:{{{bucket}}}"


LIVE_KEYS = [live_key(bucket) for bucket in range(BUCKETS)]


async def unlink_each(redis: Redis, keys: list[str]) -> int:
    """UNLINK the keys one by one in a pipeline (in a cluster they are in different slots)."""
    if not keys:
        return 0
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:  # not pipe.unlink: a cluster pipeline's is a coroutine (it splits)
            pipe.execute_command("UNLINK", key)
        return sum(await pipe.execute())


async def drop_session_keys(redis: Redis) -> int:
    """Delete every session key, the live indexes and the warm-up marker; how many sessions.
    (A cluster client's SCAN walks every primary.)"""
    dropped = 0
    async for key in redis.scan_iter(match="session:*", count=1000):
        dropped += await redis.unlink(key)
    await unlink_each(redis, [*LIVE_KEYS, LEGACY_LIVE, MARKER])
    return dropped


class RedisSessionStore:
    def __init__(
        self,
        redis: Redis,
        sql: SqlSessionStore,
        lifetime: Lifetime,
        refresh: timedelta,
        wait_ms: int = 0,
    ) -> None:
        self.redis = redis
        # a replica confirms each write (Sentinel, Cluster); None for one Redis
        self.replicas = Replicas(redis, wait_ms) if wait_ms > 0 else None
        # the scripts' calls on one plain Redis go through a lean pipe of their own
        self.lane = RedisLane.of(redis) if self.replicas is None else None
        self.sql = sql
        self.lifetime = lifetime
        self.refresh_ms = int(refresh / MILLISECOND)
        self._touch = redis.register_script(TOUCH)
        # the session reads that arrive together share one TOUCH call (one round trip)
        self._touches: Coalescer[str, Any] = Coalescer(self._touch_many)
        self._snapshot = redis.register_script(SNAPSHOT)
        self._destroy = redis.register_script(DESTROY)
        # the snapshots written together (after writes) share one pipelined round trip
        self._snapshots: Coalescer[tuple[Session, datetime | None], None] = Coalescer(
            self._snapshot_many
        )
        self._down_until = 0.0
        self._dirty: set[str] = set()
        self._warming: asyncio.Task[int] | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._refreshing: dict[str, asyncio.Future[None]] = {}  # session id -> its refresh
        self._refreshes: Coalescer[Session, None] = Coalescer(self._refresh_many)

    # -- Redis health: a small circuit breaker, logged once per outage --------------------

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: Exception, session_id: str | None = None) -> None:
        METRICS.store_error("redis")
        if session_id:
            self._mark_dirty(session_id)
        if self._down_until == 0.0:
            log.warning("Redis unavailable (%s); serving sessions from PostgreSQL", exc)
        self._down_until = time.monotonic() + 1.0

    def _mark_dirty(self, session_id: str) -> None:
        self._dirty.add(session_id)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush_dirty())

    async def _recovered(self) -> None:
        if self._down_until == 0.0:
            return
        await self._drop_dirty()
        self._down_until = 0.0
        log.warning("Redis is back; sessions served from Redis again")

    async def _drop_dirty(self) -> None:
        """Drop the keys whose write failed; forgotten only once gone (in a cluster, a node
        may still be away; with replicas, a replica must have taken the drop)."""
        if not self._dirty:
            return
        stale = list(self._dirty)
        keys = [session_key(session_id) for session_id in stale]
        if self.replicas is not None:
            await self.replicas.drop(keys)
        else:
            await unlink_each(self.redis, keys)
        self._dirty.difference_update(stale)

    async def _flush_dirty(self) -> None:
        """Once Redis answers again, drop the keys written while it failed, without waiting
        for a request to this instance."""
        while self._dirty:
            await asyncio.sleep(max(0.1, self._down_until - time.monotonic()))
            try:
                if self._down_until == 0.0:
                    await self._drop_dirty()
                else:
                    await self._recovered()
            except RedisError as exc:
                self._failed(exc)

    # -- cache plumbing ---------------------------------------------------------------

    async def _cache(self, session: Session, db_expires: datetime | None = None) -> None:
        if not self.available:
            self._mark_dirty(session.id)
            return
        try:
            await self._snapshots.submit((session, db_expires))
            await self._recovered()
        except RedisError as exc:
            self._failed(exc, session.id)

    async def _scripts(
        self, calls: list[tuple[Any, list[str], list[Any]]], confirm: bool = False
    ) -> list[Any]:
        """Run (script, keys, args) calls in one round trip: one EVALSHA alone, several in a
        pipeline (EVALSHA queued as it is: redis-py's script-aware pipeline would first ask
        SCRIPT EXISTS, a round trip more). A Redis that answers NOSCRIPT (restarted, or a
        replica just promoted) gets the scripts loaded again, on every primary of a cluster,
        and the calls are sent once more: each is idempotent.

        `confirm` (writes, with replicas): the pipeline ends with a WAIT per master, and the
        keys (each call's first) no replica took are dropped (replicas.py)."""
        replicas = self.replicas if confirm else None
        if self.lane is not None:
            return await self._lane_scripts(calls)
        if len(calls) == 1 and replicas is None:  # Script loads itself again after NOSCRIPT
            script, keys, args = calls[0]
            return [await script(keys=keys, args=args)]
        first = [keys[0] for _, keys, _ in calls]
        for attempt in (1, 2):
            try:
                targets = await replicas.targets(first) if replicas else []
                async with self.redis.pipeline(transaction=False) as pipe:
                    for script, keys, args in calls:
                        pipe.evalsha(script.sha, len(keys), *keys, *args)
                    if replicas is not None:
                        replicas.queue_waits(pipe, targets)
                    replies = list(await pipe.execute())
                if replicas is not None:
                    short = replicas.unconfirmed(targets, replies[len(calls) :])
                    await replicas.drop([first[i] for i in short])
                return replies[: len(calls)]
            except NoScriptError:
                if attempt == 2:
                    raise
                for text in SCRIPTS:
                    await self.redis.script_load(text)
        raise AssertionError("unreachable")

    async def _lane_scripts(self, calls: list[tuple[Any, list[str], list[Any]]]) -> list[Any]:
        """`_scripts` on the lean pipe (db/redislane.py): the same EVALSHA calls, the same
        NOSCRIPT retry, the first error reply raised as redis-py's pipeline raises it."""
        assert self.lane is not None
        commands = [
            ["EVALSHA", script.sha, len(keys), *keys, *args] for script, keys, args in calls
        ]
        for attempt in (1, 2):
            replies = await self.lane.call(commands)
            error = next((reply for reply in replies if isinstance(reply, Exception)), None)
            if error is None:
                return replies
            if not isinstance(error, NoScriptError) or attempt == 2:
                raise error
            await self.lane.call([["SCRIPT", "LOAD", text] for text in SCRIPTS])
        raise AssertionError("unreachable")

    def _snapshot_call(
        self, session: Session, db_expires: datetime | None
    ) -> tuple[Any, list[str], list[Any]]:
        keys = [session_key(session.id), live_key(bucket_of(session.id))]
        return self._snapshot, keys, self._snapshot_args(session, db_expires)

    async def _snapshot_many(self, batch: list[tuple[Session, datetime | None]]) -> list[None]:
        calls = [self._snapshot_call(session, when) for session, when in batch]
        await self._scripts(calls, confirm=True)
        return [None] * len(batch)

    def _snapshot_args(self, session: Session, db_expires: datetime | None = None) -> list[Any]:
        return [
            session.version,
            session.id,
            session.user_id,
            orjson.dumps(session.data),
            to_ms(session.created_at),
            to_ms(session.last_accessed),
            to_ms(session.expires_at),
            to_ms(session.max_expires_at) if session.max_expires_at else "",
            to_ms(db_expires or session.expires_at),
            self.refresh_ms,
        ]

    def _decode(self, flat: list[bytes]) -> tuple[Session, int]:
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        session = Session(
            id=fields[b"id"].decode(),
            user_id=fields[b"userId"].decode(),
            data=orjson.loads(fields[b"data"]),
            created_at=from_ms(fields[b"createdMs"]),
            last_accessed=from_ms(fields[b"lastMs"]),
            expires_at=from_ms(fields[b"expiresMs"]),
            max_expires_at=from_ms(fields[b"maxMs"]) if fields.get(b"maxMs") else None,
            version=int(fields[b"version"]),
        )
        return session, int(fields.get(b"dbMs") or 0)

    # -- the SessionStore verbs ---------------------------------------------------------

    async def create(
        self,
        user_id: str,
        data: dict[str, Any],
        client: Client = Client(),
        new: NewId | None = None,
    ) -> Session:
        session = await self.sql.create(user_id, data, client, new)
        await self._cache(session)
        return session

    async def get(self, session_id: str) -> Session | None:
        strict = False
        fallback = "unavailable"
        if self.available:
            try:
                cached = await self._get_cached(session_id)
                await self._recovered()
            except RedisError as exc:
                self._failed(exc)
            else:
                METRICS.cache_lookup("sessions", isinstance(cached, Session))
                if isinstance(cached, Session):
                    return cached
                # expired in Redis: PostgreSQL confirms without grace (it may have slid the
                # session while Redis was stalled); missing: PostgreSQL decides, with grace
                strict = cached is EXPIRED
                fallback = "" if strict else "missed"
                if not strict:
                    self.warm_in_background()
        session = await self.sql.get(session_id, strict=strict)
        if session is not None:
            if fallback:  # a live session Redis should have served (an unknown id is not)
                METRICS.session_fallback(fallback)
            await self._cache(session)
        return session

    async def _touch_many(self, session_ids: list[str]) -> list[Any]:
        """TOUCH the sessions in one call: each one's fields, or None when it is gone.
        (redis-py's Script loads TOUCH again into a Redis that lost its scripts.)"""
        now = to_ms(utcnow())
        idle = int(self.lifetime.idle / MILLISECOND)
        buckets: dict[int, list[int]] = {}  # bucket -> positions in session_ids
        for position, session_id in enumerate(session_ids):
            buckets.setdefault(bucket_of(session_id), []).append(position)
        calls = [
            (
                self._touch,
                [live_key(bucket), *(session_key(session_ids[i]) for i in positions)],
                [now, idle, self.refresh_ms],
            )
            for bucket, positions in buckets.items()
        ]
        results: list[Any] = [None] * len(session_ids)
        for positions, replies in zip(buckets.values(), await self._scripts(calls), strict=True):
            for position, reply in zip(positions, replies, strict=True):
                results[position] = EXPIRED if reply == -1 else reply or None
        return results

    async def _get_cached(self, session_id: str) -> Session | object | None:
        """The session, EXPIRED when Redis has it and it has expired, None when Redis does
        not have it."""
        flat = await self._touches.submit(session_id)
        if not flat or flat is EXPIRED:
            return flat or None
        session, db_ms = self._decode(flat)
        if to_ms(session.expires_at) - db_ms >= self.refresh_ms:
            self._refresh_in_background(session)
        return session

    def _refresh_in_background(self, session: Session) -> None:
        """Bring PostgreSQL's copy of the expiry up to date without making the request wait.

        Sessions made together come due together. Refreshes awaited inline, one transaction
        each, stalled the requests that carried them; in the background, one transaction and
        pool connection each, they overflowed the pool, and every request in flight waited
        behind the burst of new connections (docs/perf-history.md, "Where the mix's stalls
        come from"). So the refreshes that come due together go out as one transaction.
        One refresh per session at a time; one that fails is tried again on a later read,
        since Redis's `dbMs` moves only after PostgreSQL has the new expiry."""
        if session.id in self._refreshing:
            return
        future = self._refreshing[session.id] = self._refreshes.enqueue(session)
        future.add_done_callback(partial(self._refreshed, session.id))

    def _refreshed(self, session_id: str, future: asyncio.Future[None]) -> None:
        self._refreshing.pop(session_id, None)
        if not future.cancelled():
            future.exception()  # retrieved: an error was logged by `_refresh_many`, or is moot

    def warm_in_background(self) -> None:
        if self._warming is None or self._warming.done():
            self._warming = asyncio.create_task(self.warm())

    async def cache_many(self, sessions: list[Session], lagging: bool = False) -> int:
        """Snapshot many sessions into Redis in one pipelined round trip (newer versions win).

        `lagging`: rows read from the table, whose expiry may lag the true one by up to the
        grace; Redis is given the latest it can be, and `dbMs` what the row holds."""
        grace = timedelta(milliseconds=self.refresh_ms if lagging else 0)
        calls = []
        for session in sessions:
            latest = session.expires_at + grace
            if session.max_expires_at is not None and session.max_expires_at < latest:
                latest = session.max_expires_at
            lagged = replace(session, expires_at=latest)
            calls.append(self._snapshot_call(lagged, session.expires_at))
        if calls:
            await self._scripts(calls, confirm=True)
        return len(sessions)

    async def adopt_database(self, database_id: str) -> int:
        """Make Redis hold sessions of this database only: when it holds another database's
        (one since reset, restored or replaced), drop them. Returns how many were dropped."""
        try:
            held = await self.redis.get(DATABASE_ID)
            if (
                held is not None
                and (held if isinstance(held, str) else held.decode()) == database_id
            ):
                return 0
            dropped = await drop_session_keys(self.redis)
            await self.redis.set(DATABASE_ID, database_id)
            if held is not None:
                log.warning("Redis held sessions of another database: dropped %d keys", dropped)
            return dropped
        except RedisError as exc:
            self._failed(exc)
            return 0

    async def warm(self) -> int:
        """Copy every live session from PostgreSQL into Redis, then set the marker.

        One instance at a time (a Redis lock); returns how many sessions it cached."""
        try:
            if await self.redis.exists(MARKER):
                return 0
            if not await self.redis.set(WARM_LOCK, "1", nx=True, ex=120):
                return 0
            try:
                cached = 0
                async for batch in self.sql.live_batches(500):
                    cached += await self.cache_many(batch, lagging=True)
                await self.redis.set(MARKER, str(to_ms(utcnow())))
                await self.redis.unlink(LEGACY_LIVE)
                log.info("warmed Redis with %d live sessions from PostgreSQL", cached)
                return cached
            finally:
                await self.redis.delete(WARM_LOCK)
        except RedisError as exc:
            self._failed(exc)
            return 0

    async def _refresh_many(self, batch: list[Session]) -> list[None]:
        """PostgreSQL first, in one transaction; then each session's `dbMs` in Redis, in one
        pipelined round trip. Failures are logged, not raised: nobody awaits a refresh."""
        done: list[None] = [None] * len(batch)
        try:
            await self.sql.refresh_expiries(
                [(session.id, session.last_accessed, session.expires_at) for session in batch]
            )
        except Exception as exc:  # database down: the next read after it is back retries
            METRICS.store_error("database")
            log.debug("expiry refresh of %d sessions failed: %s", len(batch), exc)
            return done
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for session in batch:
                    pipe.hset(session_key(session.id), "dbMs", str(to_ms(session.expires_at)))
                await pipe.execute()
        except RedisError as exc:
            for session in batch:
                self._failed(exc, session.id)
        return done

    async def touch(self, session_id: str) -> bool:
        return await self.get(session_id) is not None

    async def update(self, session_id: str, patch: dict[str, Any]) -> Session | None:
        session = await self.sql.update(session_id, patch)
        if session is not None:
            await self._cache(session)
        return session

    async def increment(
        self, session_id: str, key: str, patch: dict[str, Any]
    ) -> tuple[Session, int] | None:
        result = await self.sql.increment(session_id, key, patch)
        if result is not None:
            await self._cache(result[0])
        return result

    async def destroy(self, session_id: str) -> bool:
        deleted = await self.sql.destroy(session_id)
        await self._bury(session_id)
        return deleted

    async def regenerate(self, session_id: str, new: NewId | None = None) -> Session | None:
        """PostgreSQL moves the session to its new id; Redis buries the old key (every
        instance reads the tombstone at once) and caches the new one."""
        session = await self.sql.regenerate(session_id, new)
        await self._bury(session_id)
        if session is not None:
            await self._cache(session)
        return session

    async def _bury(self, session_id: str) -> None:
        await self._bury_many([session_id])

    async def _bury_many(self, session_ids: list[str], chunk: int = 500) -> None:
        """Replace each session's hash by a tombstone (late snapshots are refused) and take
        it out of its bucket's live index: one script call per session, its keys in one
        slot, the calls of a chunk in one round trip."""
        idle = int(self.lifetime.idle / MILLISECOND)
        for start in range(0, len(session_ids), chunk):
            part = session_ids[start : start + chunk]
            calls: list[tuple[Any, list[str], list[Any]]] = [
                (self._destroy, [session_key(sid), live_key(bucket_of(sid))], [sid, idle])
                for sid in part
            ]
            try:
                await self._scripts(calls, confirm=True)
            except RedisError as exc:
                for session_id in part:
                    self._failed(exc, session_id)

    async def of_user(self, user_id: str) -> list[Session]:
        """PostgreSQL finds the user's sessions by its index; Redis, where it has them, gives
        their current lastAccessed and expiresAt (one pipelined HMGET), and drops the ones it
        knows ended."""
        found = await self.sql.of_user(user_id)
        if not found or not self.available:
            return found
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for session in found:
                    pipe.hmget(session_key(session.id), "lastMs", "expiresMs", "maxMs", "gone")
                cached = await pipe.execute()
        except RedisError as exc:
            self._failed(exc)
            return found
        now = to_ms(utcnow())
        live = []
        for session, (last, expires, hard, gone) in zip(found, cached, strict=True):
            if gone:
                continue
            if expires is not None:
                if int(expires) <= now or (hard and int(hard) <= now):
                    continue
                session.last_accessed = from_ms(last)
                session.expires_at = from_ms(expires)
            live.append(session)
        return live

    async def revoke(self, session_ids: list[str]) -> list[str]:
        ended = await self.sql.revoke(session_ids)
        await self._bury_many(sorted(set(session_ids)))
        return ended

    async def revoke_all(self) -> int:
        ids, live = await self.sql.delete_all()
        await self._bury_many(ids)
        return live

    async def users(self) -> int:
        return await self.sql.users()

    async def count(self) -> int:
        if self.available:
            try:
                now = f"({to_ms(utcnow())}"
                async with self.redis.pipeline(transaction=False) as pipe:
                    for key in LIVE_KEYS:
                        pipe.zcount(key, now, "+inf")
                    return sum(int(found) for found in await pipe.execute())
            except RedisError as exc:
                self._failed(exc)
        return await self.sql.count()

    async def sweep(self) -> int:
        """Drop expired PostgreSQL rows (one instance at a time) and stale index entries."""
        removed = await self.sql.sweep()
        try:
            now = to_ms(utcnow())
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in LIVE_KEYS:
                    pipe.zremrangebyscore(key, "-inf", now)
                await pipe.execute()
        except RedisError as exc:
            self._failed(exc)
        return removed

    async def close(self) -> None:
        for task in (self._warming, self._flushing):
            if task is not None and not task.done():
                task.cancel()
        if self._refreshing:  # a moment for refreshes in flight, then they are dropped
            await asyncio.wait(list(self._refreshing.values()), timeout=2.0)
        if self.lane is not None:
            await self.lane.close()
        await self.redis.aclose()
        await self.sql.close()
