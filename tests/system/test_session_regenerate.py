"""`POST /session/regenerate`: a new id for the same session, the old one dead at once on
every instance, on each backend with two instances sharing it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from statebridge.client import StatefulClient
from tests.support.pairs import BACKENDS, backend_env, running_pair
from tests.support.servers import Server


@pytest.fixture(scope="module", params=BACKENDS)
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server]]:
    with (
        backend_env(request.param, request) as env,
        running_pair(env, tmp_path_factory.mktemp(request.param)) as servers,
    ):
        yield servers


def test_regenerate_keeps_data_cart_and_lifetime_and_kills_the_old_id_everywhere(
    pair: tuple[Server, Server],
) -> None:
    first, second = pair
    created = httpx.post(f"{first.stateful_url}/session", json={"userId": "user001"})
    old = created.headers["Session-ID"]
    headers = {"Session-ID": old}
    httpx.put(f"{first.stateful_url}/session", json={"data": {"k": "v"}}, headers=headers)
    line = {"productId": "prod002", "quantity": 3}
    assert httpx.post(f"{first.stateful_url}/cart/add", json=line, headers=headers).is_success
    before = httpx.get(f"{second.stateful_url}/session", headers=headers).json()["data"]
    # the old id has been read on both instances (cached where there is a cache)
    assert httpx.get(f"{first.stateful_url}/session", headers=headers).status_code == 200

    answer = httpx.post(f"{first.stateful_url}/session/regenerate", headers=headers)
    assert answer.status_code == 200, answer.text
    new = answer.headers["Session-ID"]
    body = answer.json()["data"]
    assert new != old and body["session"]["id"] == new and body["previousId"] == old
    assert body["session"]["userId"] == "user001"
    assert body["session"]["createdAt"] == before["session"]["createdAt"]
    assert answer.json()["message"] == "Session id regenerated"

    for server in (first, second):  # at once, on every instance
        gone = httpx.get(f"{server.stateful_url}/session", headers=headers)
        assert gone.status_code == 401, (server.port, gone.text)
        assert httpx.get(f"{server.stateful_url}/cart", headers=headers).status_code == 401
    renewed = {"Session-ID": new}
    for server in (second, first):
        got = httpx.get(f"{server.stateful_url}/session", headers=renewed).json()["data"]
        assert got["session"]["data"] == {"k": "v"}
        assert got["session"]["createdAt"] == before["session"]["createdAt"]
        cart = httpx.get(f"{server.stateful_url}/cart", headers=renewed).json()["data"]["cart"]
        assert [(item["productId"], item["quantity"]) for item in cart["items"]] == [("prod002", 3)]
    # a second regenerate of the old id is refused; the new one can be regenerated again
    again = httpx.post(f"{second.stateful_url}/session/regenerate", headers=headers)
    assert again.status_code == 401
    third = httpx.post(f"{second.stateful_url}/session/regenerate", headers=renewed)
    assert third.status_code == 200
    assert httpx.get(f"{first.stateful_url}/session", headers=renewed).status_code == 401
    assert httpx.delete(
        f"{first.stateful_url}/session", headers={"Session-ID": third.headers["Session-ID"]}
    ).is_success


def test_regenerate_without_a_session_is_401(pair: tuple[Server, Server]) -> None:
    answer = httpx.post(f"{pair[0].url}/api/stateful/session/regenerate")
    assert answer.status_code == 401
    assert answer.json()["message"] == "Valid session required"


async def test_the_client_keeps_the_new_id(pair: tuple[Server, Server]) -> None:
    first, second = pair
    async with StatefulClient(first.stateful_url) as client:
        await client.create_session("user002", {"step": 1})
        old = client.session_id
        envelope = await client.regenerateSession()
        assert client.session_id == envelope["data"]["session"]["id"] != old
        assert (await client.get_session())["data"]["session"]["data"] == {"step": 1}
        await client.delete_session()
    stale = httpx.get(f"{second.stateful_url}/session", headers={"Session-ID": old or ""})
    assert stale.status_code == 401


@pytest.mark.parametrize("kind", ["embedded", "memory"])
def test_with_cookie_sessions_the_cookie_is_replaced(
    kind: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = {"STATEBRIDGE_SESSION_COOKIE": "on", "STATEBRIDGE_SESSION_COOKIE_SECURE": "false"}
    if kind == "memory":
        env["STATEBRIDGE_SESSION_BACKEND"] = "memory"
    server = Server(env, tmp_path_factory.mktemp(f"cookie-{kind}")).start()
    try:
        with httpx.Client(base_url=server.stateful_url) as browser:
            created = browser.post("/session", json={"userId": "user002"})
            old = created.cookies["session_id"]
            assert browser.post("/cart/add", json={"productId": "prod001"}).is_success
            answer = browser.post("/session/regenerate")  # the cookie alone carries the id
            assert answer.status_code == 200, answer.text
            new = answer.cookies["session_id"]
            assert new == answer.headers["Session-ID"] != old
            assert "HttpOnly" in answer.headers["set-cookie"]
            cart = browser.get("/cart").json()["data"]["cart"]  # the client sends the new one
            assert cart["sessionId"] == new and cart["itemCount"] == 1
        stale = httpx.get(f"{server.stateful_url}/cart", cookies={"session_id": old})
        assert stale.status_code == 401
    finally:
        server.stop()
