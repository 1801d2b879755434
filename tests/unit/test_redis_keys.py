"""Every key a session script touches is in one Redis Cluster slot, and sessions spread."""

from __future__ import annotations

import collections
import uuid

from redis.crc import key_slot

from statebridge.stores.sessions.redis import (
    BUCKETS,
    LIVE_KEYS,
    bucket_of,
    live_key,
    session_key,
)


def test_a_session_and_its_live_index_share_a_slot() -> None:
    for _ in range(1000):
        session_id = str(uuid.uuid4())
        key = session_key(session_id)
        assert key.startswith("session:") and key.endswith(session_id)
        assert key_slot(key.encode()) == key_slot(live_key(bucket_of(session_id)).encode())


def test_sessions_fall_in_every_bucket_and_the_buckets_in_distinct_slots() -> None:
    buckets = collections.Counter(bucket_of(str(uuid.uuid4())) for _ in range(6400))
    assert len(buckets) == BUCKETS and min(buckets.values()) > 50
    assert len({key_slot(key.encode()) for key in LIVE_KEYS}) == BUCKETS
