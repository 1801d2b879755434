"""The fence around statebridge/db/redislane.py, the parts that need no server: how it packs
a command, how it maps error replies, which clients it takes over from redis-py, and the
hiredis behaviour it reads replies with. These fail when hiredis or redis-py change what
the lane leans on."""

from __future__ import annotations

import hiredis
import pytest
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError

from statebridge.db.redisclient import connect_redis
from statebridge.db.redislane import RedisLane, pack, raised


def test_a_command_is_packed_as_an_array_of_bulk_strings() -> None:
    assert pack(["EVALSHA", b"\x00\xff", 2, "ключ"]) == (
        b"*4\r\n$7\r\nEVALSHA\r\n$2\r\n\x00\xff\r\n$1\r\n2\r\n$8\r\n" + "ключ".encode() + b"\r\n"
    )
    assert pack([]) == b"*0\r\n"


def test_a_packed_command_is_what_redis_py_sends() -> None:
    from redis.connection import PythonRespSerializer

    command = ("EVALSHA", "abc", 2, "session:{3}:x", "sessions:live:{3}", 17, b"{}", -1)
    encoder = Redis().get_encoder()
    serializer = PythonRespSerializer(6000, encoder.encode)
    assert pack(command) == b"".join(serializer.pack(*command))


def test_hiredis_gives_replies_and_error_objects_as_the_lane_reads_them() -> None:
    reader = hiredis.Reader(replyError=ResponseError)
    reader.feed(b"*3\r\n:1\r\n$2\r\nab\r\n*0\r\n-NOSCRIPT No matching script\r\n+OK\r\n$-1\r\n*2\r")
    assert reader.gets() == [1, b"ab", []]
    error = reader.gets()
    assert isinstance(error, ResponseError) and str(error).startswith("NOSCRIPT")
    assert reader.gets() == b"OK"
    assert reader.gets() is None  # a nil reply
    assert reader.gets() is False  # an incomplete one: wait for more
    reader.feed(b"\n:-1\r\n:0\r\n")
    assert reader.gets() == [-1, 0]


def test_error_replies_become_redis_pys_exceptions() -> None:
    assert isinstance(raised(ResponseError("NOSCRIPT No matching script")), NoScriptError)
    other = raised(ResponseError("ERR wrong number of arguments"))
    assert type(other) is ResponseError and "wrong number" in str(other)
    assert raised([b"a", 0]) == [b"a", 0]


@pytest.mark.parametrize(
    ("url", "host", "port", "path", "db", "username", "password"),
    [
        ("redis://127.0.0.1:6390/4", "127.0.0.1", 6390, None, 4, None, None),
        ("redis://:secret@localhost/0", "localhost", 6379, None, 0, None, "secret"),
        ("redis://app:pw@[::1]:7000/2", "::1", 7000, None, 2, "app", "pw"),
        ("unix:///run/redis.sock?db=3", "localhost", 6379, "/run/redis.sock", 3, None, None),
    ],
)
def test_a_plain_redis_gets_a_lane_to_the_same_server(
    url: str, host: str, port: int, path: str | None, db: int, username: str | None,
    password: str | None,
) -> None:  # fmt: skip
    lane = RedisLane.of(connect_redis(url))
    assert lane is not None
    address = lane.address
    if path is None:
        assert (address.host, address.port, address.path) == (host, port, None)
    else:
        assert address.path == path
    assert (address.db, address.username, address.password) == (db, username, password)
    assert (address.timeout, address.connect_timeout) == (2.0, 1.0)  # redisclient.FAIL_FAST


@pytest.mark.parametrize(
    "url",
    [
        "rediss://127.0.0.1:6390/0",
        "redis+sentinel://127.0.0.1:26379/statebridge",
        "redis+cluster://127.0.0.1:7000",
    ],
)
def test_tls_sentinel_and_cluster_stay_on_redis_py(url: str) -> None:
    assert RedisLane.of(connect_redis(url)) is None
