"""Phase 1's stateless client demo (`stateless-client.js`), replayed in Python."""

from __future__ import annotations

from statebridge.client import ResponseError, StatelessClient
from statebridge.ops.demo.console import Printer

TAKEAWAYS = [
    "Each request is independent",
    "No session memory between requests",
    "All context must be provided in each request",
    "Server scales easily (no session affinity needed)",
    "Simple, predictable, and reliable",
]


async def basic_requests(client: StatelessClient, out: Printer) -> None:
    out.section("🔍 Basic Stateless Requests")
    out.step("📋 Testing basic server functionality...")
    await client.health_check()
    out.say("\n🔄 Calling /info multiple times to demonstrate statelessness:", "magenta")
    infos = [(await client.get_server_info())["data"] for _ in range(3)]
    counts = " → ".join(str(info.get("requestCount")) for info in infos)
    randoms = ", ".join(f"{info.get('randomValue', 0):.3f}" for info in infos)
    out.bullets(
        "What the three answers show:",
        [
            f"requestCount {counts}: one server-wide counter, not a count of *your* requests",
            f"randomValue {randoms}: fresh every time, nothing carried over",
            f"message: {infos[-1].get('message', '')}",
        ],
    )


async def calculations(client: StatelessClient, out: Printer) -> None:
    out.section("🧮 Calculation Demonstrations")
    out.step("📋 Testing calculation endpoints...")
    await client.perform_calculation("add", [1, 2, 3, 4, 5])
    await client.perform_calculation("multiply", [2, 3, 4])
    await client.perform_calculation("average", [10, 20, 30, 40, 50])
    try:
        await client.perform_calculation("invalid", [1, 2, 3])
    except ResponseError as exc:
        out.say(f"✅ Error handling works correctly ({exc.status_code} {exc.message})", "green")
    else:
        out.say("⚠️  The server accepted an unknown operation", "red")


async def data_access(client: StatelessClient, out: Printer) -> None:
    out.section("📊 Data Access Patterns")
    out.step("📋 Testing data access endpoints...")
    await client.get_users()
    await client.get_user_by_id("user001")
    await client.get_products()
    await client.get_products({"category": "electronics"})
    await client.get_products({"minPrice": 15, "maxPrice": 25})
    await client.get_random_data(3, "number")
    await client.get_random_data(2, "string")
    await client.get_random_data(4, "boolean")


async def concepts(client: StatelessClient, out: Printer) -> None:
    out.section("🎓 Stateless Concepts Demonstration")
    out.step("📋 Demonstrating stateless behavior concepts...")
    await client.demonstrate_stateless_behavior()
    await client.compare_with_stateful()


async def run(base_url: str, out: Printer) -> None:
    """The whole demo; client errors propagate to the caller, which explains them."""
    out.section("🚀 Stateless Client Interactive Demo")
    out.step(f"🔗 Connecting to stateless server at {base_url} ...")
    async with StatelessClient(base_url, on_exchange=out.exchange) as client:
        await client.health_check()
        out.say("✅ Connected to stateless server!", "green")
        await basic_requests(client, out)
        await calculations(client, out)
        await data_access(client, out)
        await concepts(client, out)
    out.section("✅ Demo Complete")
    out.say("🎉 Stateless client demonstration completed successfully!", "green")
    out.takeaways("💡 Key Takeaways", TAKEAWAYS)
