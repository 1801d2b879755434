"""Phase 1's stateful client demo (`stateful-client.js`), replayed in Python.

One change: it puts user001's preferences back at the end. Phase 1 forgot them on
restart; statebridge keeps them, so a demo should not leave its mark on the user.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from statebridge.client import StatefulClient
from statebridge.ops.demo.console import Printer
from statebridge.wording import counted

USER = "user001"
TAKEAWAYS = [
    "Server maintains session state across requests",
    "Client must include Session-ID in subsequent requests",
    "Shopping cart, preferences, and workflow state persist",
    "Server remembers user between interactions",
    "More complex but enables richer user experiences",
]


def js_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def session_lifecycle(client: StatefulClient, out: Printer) -> None:
    out.section("🔄 Session Lifecycle Demonstration")
    out.step("📋 Testing session management...")
    await client.create_session(
        USER, {"userAgent": "Stateful Demo Client", "preferences": {"theme": "light"}}
    )
    out.say(f"✅ Session created: {client.session_id}", "green")
    await client.get_session()
    await client.update_session({"lastAction": "Updated session data", "timestamp": js_now()})
    await client.get_session()


async def shopping_cart(client: StatefulClient, out: Printer) -> None:
    out.section("🛒 Shopping Cart Demonstration")
    out.step("📋 Testing shopping cart functionality...")
    await client.get_cart()
    await client.add_to_cart("prod001", 2)
    await client.add_to_cart("prod002", 1)
    await client.add_to_cart("prod003", 3)
    await client.get_cart()
    await client.remove_from_cart("prod002")
    cart = (await client.get_cart())["data"]["cart"]
    items = counted(cart["itemCount"], "item")
    out.say(f"🧾 The server kept the cart: {items}, total {cart['total']}")
    await client.clear_cart()


async def user_profile(client: StatefulClient, out: Printer) -> Any:
    """Returns the preferences as they were, so `run` can put them back."""
    out.section("👤 User Profile Demonstration")
    out.step("📋 Testing user profile operations...")
    original = (await client.get_profile())["data"]["profile"].get("preferences")
    await client.update_preferences(
        {"theme": "dark", "language": "en", "notifications": True, "currency": "USD"}
    )
    await client.get_profile()
    return original


async def workflow(client: StatefulClient, out: Printer) -> None:
    out.section("🔄 Multi-Step Workflow Demonstration")
    out.step("📋 Testing stateful workflow...")
    await client.start_workflow()
    for _ in range(4):  # the fourth completes the workflow
        await client.next_workflow_step()


async def concepts(client: StatefulClient, out: Printer) -> None:
    out.section("🎓 Stateful Concepts Demonstration")
    out.step("📋 Demonstrating stateful behavior concepts...")
    out.say("\n🔄 Calling demonstration endpoint multiple times:", "magenta")
    visits = [(await client.demonstrate_stateful_behavior())["data"]["visitCount"] for _ in "123"]
    out.say(f"👣 visitCount {' → '.join(map(str, visits))}: the server remembers this session")
    await client.get_server_info()


async def run(base_url: str, out: Printer) -> None:
    """The whole demo; client errors propagate to the caller, which explains them."""
    out.section("🚀 Stateful Client Interactive Demo")
    out.step(f"🔗 Connecting to stateful server at {base_url} ...")
    async with StatefulClient(base_url, on_exchange=out.exchange) as client:
        await client.health_check()
        out.say("✅ Connected to stateful server!", "green")
        await session_lifecycle(client, out)
        await shopping_cart(client, out)
        original = await user_profile(client, out)
        await workflow(client, out)
        await concepts(client, out)
        if isinstance(original, dict):
            out.step(f"\n↩️  Putting {USER}'s preferences back (they outlive the session)")
            await client.update_preferences(original)
        if client.session_id:
            session_id = client.session_id
            await client.delete_session()
            out.say(f"🗑️  Session {session_id} deleted", "yellow")
    out.section("✅ Demo Complete")
    out.say("🎉 Stateful client demonstration completed successfully!", "green")
    out.takeaways("💡 Key Takeaways", TAKEAWAYS)
