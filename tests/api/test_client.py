"""The Python clients against a real statebridge: Phase 1's method names, sessions, errors."""

from __future__ import annotations

import pytest

from statebridge.client import (
    Exchange,
    NoSessionError,
    ResponseError,
    StatefulClient,
    StatelessClient,
    TransportError,
)
from tests.support.servers import Server, free_port


async def test_phase1_client_compatibility(server: Server) -> None:
    """The transition guide's test, as written there: no context manager, camelCase names."""
    client = StatelessClient(server.url)

    health = await client.healthCheck()
    assert health["data"]["server"] == "Stateless Server"

    info = await client.getServerInfo()
    assert "message" in info["data"]
    await client.aclose()


async def test_stateless_methods_return_phase1_envelopes(server: Server) -> None:
    async with StatelessClient(f"{server.url}/api/stateless") as client:
        calls = {
            "Stateless server is healthy": client.health_check(),
            "Stateless server information": client.get_server_info(),
            "Calculation successful": client.perform_calculation("add", [1, 2, 3]),
            "Random data generated": client.get_random_data(3, "string"),
            "Users retrieved": client.get_users(),
            "User found": client.get_user_by_id("user001"),
            "Products retrieved": client.get_products(),
            "Stateless behavior demonstration": client.demonstrate_stateless_behavior(),
            "Architecture comparison": client.compare_with_stateful(),
        }
        for message, call in calls.items():
            envelope = await call
            assert envelope["status"] == "success", message
            assert envelope["message"] == message
            assert isinstance(envelope["data"], dict)


async def test_arguments_reach_the_server(server: Server) -> None:
    async with StatelessClient(server.stateless_url, client_id="tests") as client:
        calculation = (await client.performCalculation("subtract", [10, 3, 2]))["data"]
        assert calculation["result"] == 5
        context = await client.perform_calculation("add", [1], client_context={"k": 1})
        assert context["data"]["clientContext"] == {"k": 1}
        random = (await client.getRandomData(4, "boolean"))["data"]
        assert random["count"] == 4
        assert all(isinstance(value, bool) for value in random["values"])
        assert (await client.get_server_info())["data"]["clientId"] == "tests"
        by_dict = (await client.getProducts({"category": "electronics"}))["data"]
        assert by_dict["filters"]["category"] == "electronics"
        assert {p["category"] for p in by_dict["products"]} == {"electronics"}
        by_keyword = (await client.get_products(max_price=20))["data"]
        assert by_keyword["filters"]["maxPrice"] == "20"
        assert all(p["price"] <= 20 for p in by_keyword["products"])
        assert client.last_exchange is not None
        assert client.last_exchange.path == "/products?maxPrice=20"


def test_camel_case_names_are_the_snake_case_methods() -> None:
    assert StatelessClient.healthCheck is StatelessClient.health_check
    assert StatelessClient.getUserById is StatelessClient.get_user_by_id
    assert StatefulClient.addToCart is StatefulClient.add_to_cart
    assert StatefulClient.nextWorkflowStep is StatefulClient.next_workflow_step


async def test_error_status_raises_with_the_envelope(server: Server) -> None:
    async with StatelessClient(server.url) as client:
        with pytest.raises(ResponseError) as caught:
            await client.performCalculation("invalid", [1, 2, 3])
        assert caught.value.status_code == 400
        assert caught.value.message == "Unsupported operation: invalid"
        assert caught.value.envelope is not None
        assert caught.value.envelope["status"] == "error"
        assert caught.value.errors == []

        with pytest.raises(ResponseError) as missing:
            await client.perform_calculation("add", [])
        assert missing.value.message == "Validation failed"
        assert missing.value.errors[0]["field"] == "values"

        with pytest.raises(ResponseError) as unknown:
            await client.getUserById("nobody")
        assert unknown.value.status_code == 404


async def test_stateful_client_keeps_the_session(server: Server) -> None:
    seen: list[Exchange] = []
    async with StatefulClient(server.stateful_url, on_exchange=seen.append) as client:
        created = await client.createSession("user001", {"theme": "light"})
        assert client.session_id == created["data"]["session"]["id"]
        assert client.sessionId == client.session_id
        assert seen[-1].headers["Session-ID"] == client.session_id

        session = (await client.getSession())["data"]["session"]
        assert session["id"] == client.session_id
        assert seen[-1].request_headers["Session-ID"] == client.session_id
        updated = await client.updateSession({"step": 1})
        assert updated["data"]["session"]["data"] == {"theme": "light", "step": 1}

        visits = [(await client.demonstrateStatefulBehavior())["data"]["visitCount"] for _ in "12"]
        assert visits == [1, 2]

        await client.addToCart("prod001", 2)
        await client.add_to_cart("prod002")
        cart = (await client.getCart())["data"]["cart"]
        assert {item["productId"]: item["quantity"] for item in cart["items"]} == {
            "prod001": 2,
            "prod002": 1,
        }
        assert cart["total"] == 79.97
        removed = await client.removeFromCart("prod002")
        assert removed["data"]["cart"]["itemCount"] == 1
        assert (await client.clearCart())["data"]["cart"]["items"] == []

        profile = (await client.getProfile())["data"]["profile"]
        assert profile["id"] == "user001"
        original = profile["preferences"]
        changed = await client.updatePreferences({"theme": "dark"})
        assert changed["data"]["profile"]["preferences"] == {"theme": "dark"}
        await client.update_preferences(original)

        info = (await client.getServerInfo())["data"]
        assert info["sessionInfo"]["sessionId"] == client.session_id
        assert (await client.healthCheck())["data"]["serverType"] == "stateful"

        old_id = client.session_id
        deleted = await client.deleteSession()
        assert deleted["data"] == {**deleted["data"], "sessionId": old_id, "deleted": True}
        assert client.session_id is None
    assert all(exchange.instance_id for exchange in seen)


async def test_workflow_runs_to_completion(server: Server) -> None:
    async with StatefulClient(f"{server.url}/api/stateful") as client:
        await client.create_session("user002")
        started = await client.startWorkflow()
        assert started["data"]["currentStep"] == "started"
        messages = [(await client.nextWorkflowStep())["message"] for _ in range(4)]
        assert messages == ["Workflow advanced"] * 3 + ["Workflow completed"]
        await client.delete_session()


async def test_session_calls_need_a_session(server: Server) -> None:
    async with StatefulClient(server.stateful_url) as client:
        for call in (client.getSession, client.getCart, client.deleteSession, client.startWorkflow):
            with pytest.raises(NoSessionError):
                await call()
        assert client.last_exchange is None  # refused before touching the network


async def test_a_stale_session_id_gets_the_401_envelope(server: Server) -> None:
    async with StatefulClient(server.stateful_url) as client:
        await client.create_session("user001")
        stale = client.session_id
        await client.delete_session()
        client.session_id = stale
        with pytest.raises(ResponseError) as caught:
            await client.get_cart()
        assert caught.value.status_code == 401
        assert caught.value.message == "Session not found or expired"
        with pytest.raises(ResponseError):
            await client.delete_session()
        assert client.session_id is None


async def test_unreachable_server_raises_transport_error() -> None:
    client = StatelessClient(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(TransportError):
        await client.health_check()
    await client.aclose()


async def test_a_non_json_answer_raises_response_error(server: Server) -> None:
    """An answer that is no envelope (here the demo page's HTML; behind a proxy, its error
    page) raises ResponseError without an envelope instead of crashing."""
    async with StatelessClient(server.url) as client:
        with pytest.raises(ResponseError) as caught:
            await client.request("GET", "/demo")
    assert caught.value.status_code == 200
    assert caught.value.envelope is None
    assert caught.value.message.lower().startswith("<!doctype html>")


async def test_context_manager_closes_and_reopens(server: Server) -> None:
    client = StatelessClient(server.url)
    async with client:
        await client.health_check()
    assert client._http is None
    assert (await client.health_check())["status"] == "success"  # usable again, lazily
    await client.aclose()
