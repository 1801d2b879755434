"""REDIS_URL's forms, read into what the Redis client is made from."""

from __future__ import annotations

import pytest

from statebridge.config import Settings, redis_address


def test_one_server_is_left_to_redis_py() -> None:
    address = redis_address("rediss://app:pw@cache:6380/2")
    assert (address.kind, address.username, address.password) == ("single", "app", "pw")


def test_sentinel_names_its_sentinels_service_and_db() -> None:
    address = redis_address(
        "redis+sentinel://:pw@10.0.0.1:26379,[::1]:26380,s3:26381/mymaster/4?sentinel_password=x"
    )
    assert address.kind == "sentinel"
    assert address.hosts == (("10.0.0.1", 26379), ("::1", 26380), ("s3", 26381))
    assert (address.service, address.db, address.password) == ("mymaster", 4, "pw")
    assert address.sentinel_password == "x"
    assert redis_address("redis+sentinel://s1:26379/cache").db == 0


def test_cluster_names_its_nodes() -> None:
    address = redis_address("redis+cluster://:pw@n1:7000,n2:7001")
    assert address.kind == "cluster"
    assert address.hosts == (("n1", 7000), ("n2", 7001))
    assert address.password == "pw"


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://s1:26379",
        "redis+sentinel://s1:26379/m/x",
        "redis+sentinel://s1/m",
        "redis+cluster://n1:7000/1",
        "redis+cluster://n1:99999",
    ],
)
def test_a_bad_url_says_what_is_wrong(url: str) -> None:
    with pytest.raises(ValueError, match=r"redis\+(sentinel|cluster)://"):
        redis_address(url)


def test_production_wants_the_password_in_every_form() -> None:
    base = {
        "env": "production",
        "database_url": "postgresql://a:b@db/x",
        "session_secret": "s" * 32,
    }
    assert Settings(**base, redis_url="redis+cluster://n1:7000").production_problem()
    assert Settings(**base, redis_url="redis+cluster://:pw@n1:7000").production_problem() is None
