"""Every key a session script touches is in one Redis Cluster slot, and sessions spread."""

from __future__ import annotations

import collections
import uuid
from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from statebridge.stores.sessions.redis import (
    BUCKETS,
    LIVE_KEYS,
    bucket_of,
    from_ms,
    live_key,
    session_key,
    to_ms,
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


@given(st.integers(min_value=-(10**12), max_value=4 * 10**12))
def test_epoch_milliseconds_go_to_a_time_and_back(millis: int) -> None:
    moment = from_ms(millis)
    assert moment == datetime(1970, 1, 1) + timedelta(milliseconds=millis)
    assert from_ms(str(millis).encode()) == moment
    assert to_ms(moment) == millis


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1)))
def test_a_time_becomes_its_whole_milliseconds(moment: datetime) -> None:
    assert to_ms(moment) == (moment - datetime(1970, 1, 1)) // timedelta(milliseconds=1)
