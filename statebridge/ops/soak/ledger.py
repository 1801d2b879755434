"""Sessions for the run, and the check of every acknowledged write at its end."""

from __future__ import annotations

from collections import Counter

from statebridge.ops.http import Connection
from statebridge.ops.soak.instances import Instance
from statebridge.ops.soak.users import PRODUCTS, USERS, SharedSession


async def create_sessions(url: str, count: int) -> list[SharedSession]:
    connection = Connection(url)
    sessions = []
    for index in range(count):
        body = {"userId": USERS[index % 2], "data": {"soak": index}}
        answer = await connection.request("POST", "/api/stateful/session", body)
        if answer.status != 200:
            raise RuntimeError(f"cannot create a session: {answer.status} {answer.body[:200]!r}")
        sessions.append(SharedSession(answer.headers["session-id"]))
    await connection.close()
    return sessions


async def verify(instances: list[Instance], sessions: list[SharedSession]) -> list[str]:
    """Compare the ledger with what the instances say now; one line per discrepancy."""
    problems: list[str] = []
    connections = [Connection(instance.url) for instance in instances]
    for index, session in enumerate(sessions):
        headers = {"Session-ID": session.id}
        reader = connections[index % len(connections)]
        cart = await reader.request("GET", "/api/stateful/cart", headers=headers)
        if cart.status != 200:
            problems.append(f"{session.id}: GET /cart answered {cart.status}")
            continue
        found = Counter(
            {item["productId"]: item["quantity"] for item in cart.json()["data"]["cart"]["items"]}
        )
        for product in PRODUCTS:
            low = session.quantities[product]
            high = low + session.uncertain_quantities[product]
            if not low <= found[product] <= high:
                problems.append(
                    f"{session.id}: {product} quantity {found[product]}, acknowledged {low}"
                )
        other = connections[(index + 1) % len(connections)]
        answer = await other.request("GET", "/api/stateful/session", headers=headers)
        if answer.status != 200:
            problems.append(f"{session.id}: GET /session answered {answer.status}")
            continue
        data = answer.json()["data"]["session"]["data"]
        visits = data.get("visitCount", 0)
        if not session.visits <= visits <= session.visits + session.uncertain_visits:
            problems.append(f"{session.id}: visitCount {visits}, acknowledged {session.visits}")
        for key, value in session.data.items():
            if data.get(key) not in (value, session.attempted.get(key)):
                problems.append(
                    f"{session.id}: data[{key}] = {data.get(key)}, acknowledged {value}"
                )
    for connection in connections:
        await connection.close()
    return problems
