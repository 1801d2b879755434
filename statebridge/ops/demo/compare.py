"""Phase 1's side-by-side comparison (`comparison-demo.js`), replayed in Python.

Phase 1's own script stops half-way: it calls `performCalculation` and `getUsers` on its
stateful client, which has neither. Here the stateful side does what a stateful server
is for instead: it keeps the calculation history in the session, and serves the user's
own profile.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from statebridge.client import ClientError, Exchange, StatefulClient, StatelessClient
from statebridge.ops.demo.console import Printer
from statebridge.wording import counted

USER = "user001"
CALCULATIONS: list[tuple[str, list[float]]] = [
    ("add", [1, 2, 3, 4, 5]),
    ("multiply", [2, 3, 4]),
    ("average", [10, 20, 30, 40, 50]),
]


class Comparison:
    def __init__(self, stateless: StatelessClient, stateful: StatefulClient, out: Printer):
        self.stateless = stateless
        self.stateful = stateful
        self.out = out
        self.facts: dict[str, Any] = {}

    def compare(self, description: str, left: Any, right: Any) -> None:
        self.out.say(f"\n📊 {description}", "magenta")
        self.out.json("🔵 Stateless Result:", left, "blue")
        self.out.json("🟢 Stateful Result:", right, "green")

    async def check_servers(self) -> None:
        self.out.section("🔍 Server Health Check")
        self.out.say("🔵 Checking stateless server...", "blue")
        await self.stateless.health_check()
        self.out.say("✅ Stateless server is healthy!", "green")
        self.out.say("🟢 Checking stateful server...", "green")
        await self.stateful.health_check()
        self.out.say("✅ Stateful server is healthy!", "green")

    async def basic_requests(self) -> None:
        self.out.section("📡 Basic Request Comparison")
        self.out.subsection("Server Information")
        stateless = [(await self.stateless.get_server_info())["data"] for _ in range(3)]
        await self.stateful.create_session(USER, {"demo": "comparison"})
        stateful = [(await self.stateful.get_server_info())["data"] for _ in range(3)]
        self.out.bullets(
            "🔵 Stateless Server - Multiple /info calls:",
            [
                "Each call is independent",
                "No memory of previous requests",
                "Request count increments globally: "
                + " → ".join(str(info.get("requestCount")) for info in stateless),
            ],
            "blue",
        )
        self.out.bullets(
            "🟢 Stateful Server - Multiple /info calls:",
            [
                "Same session context maintained",
                "Server remembers the user",
                "Session information persists: " + str(stateful[-1].get("sessionInfo")),
            ],
            "green",
        )
        self.compare("Final server info comparison", stateless[-1], stateful[-1])
        self.facts["requestCount"] = stateless[-1].get("requestCount")

    async def calculations(self) -> None:
        self.out.section("🧮 Calculation Comparison")
        history: list[dict[str, Any]] = []
        for operation, values in CALCULATIONS:
            self.out.subsection(f"{operation.upper()} Calculation")
            result = (await self.stateless.perform_calculation(operation, values))["data"]
            history.append({"operation": operation, "result": result.get("result")})
            saved = await self.stateful.update_session({"calculations": history})
            kept = saved["data"]["session"]["data"].get("calculations", [])
            self.out.bullets(
                "🔵 Stateless Calculation:",
                ["One-time calculation", "No memory of previous calculations"],
                "blue",
            )
            self.out.bullets(
                "🟢 Stateful Calculation:",
                [
                    "Same calculation logic (done by the stateless server)",
                    f"History kept in the session: {len(kept)} calculation(s) so far",
                ],
                "green",
            )
        self.facts["calculations"] = len(history)

    async def data_access(self) -> None:
        self.out.section("📊 Data Access Comparison")
        self.out.subsection("User Data Access")
        await self.stateless.get_users()
        user = (await self.stateless.get_user_by_id(USER))["data"]
        profile = (await self.stateful.get_profile())["data"]
        self.out.bullets(
            "🔵 Stateless Data Access:",
            ["No authentication required", "Same data for all requests", "No user context"],
            "blue",
        )
        self.out.bullets(
            "🟢 Stateful Data Access:",
            ["Session-based authentication", "User-specific data (profile)", "Personal context"],
            "green",
        )
        self.compare("User data comparison", user, profile)

    async def stateful_features(self) -> None:
        self.out.section("🛒 Stateful-Only Features Demonstration")
        self.out.subsection("Shopping Cart Functionality")
        await self.stateful.get_cart()
        await self.stateful.add_to_cart("prod001", 2)
        await self.stateful.add_to_cart("prod002", 1)
        cart = (await self.stateful.get_cart())["data"]["cart"]
        self.out.bullets(
            "🟢 Shopping Cart (Stateful Only):",
            [
                "Maintains cart state across requests",
                "Persistent during user session",
                "Cannot be implemented statelessly without client-side storage",
            ],
            "green",
        )
        self.facts["cart"] = f"{counted(cart['itemCount'], 'item')}, total {cart['total']}"
        self.out.subsection("Visit Counting")
        visits = []
        for _ in range(3):
            visits.append((await self.stateful.demonstrate_stateful_behavior())["data"])
        self.out.bullets(
            "🟢 Visit Counting (Stateful Only):",
            [f"Visit {n}: Count = {v['visitCount']}" for n, v in enumerate(visits, 1)]
            + ["Server remembers user visits"],
            "green",
        )
        self.facts["visits"] = visits[-1]["visitCount"]
        self.out.subsection("Multi-Step Workflow")
        await self.stateful.start_workflow()
        step: dict[str, Any] = {}
        for _ in range(3):
            step = (await self.stateful.next_workflow_step())["data"]
        self.out.bullets(
            "🟢 Multi-Step Workflow (Stateful Only):",
            [
                "Maintains workflow state across requests",
                f"Tracks progress through complex processes (now {step.get('progress')})",
                "Enables sophisticated user interactions",
            ],
            "green",
        )
        self.facts["workflow"] = step.get("currentStep")

    def scalability(self) -> None:
        out = self.out
        out.section("📈 Scalability Comparison")
        out.bullets(
            "🔵 Stateless Scalability:",
            [
                "✅ Easy horizontal scaling",
                "✅ No session affinity required",
                "✅ Load balancer can distribute requests freely",
                "✅ Server instances are interchangeable",
                "✅ Better for CDNs and edge computing",
            ],
            "blue",
        )
        out.bullets(
            "🟢 Stateful Scalability:",
            [
                "⚠️  Requires session affinity (sticky sessions) - or a shared session store",
                "⚠️  Shared session store needed for multiple instances",
                "⚠️  More complex deployment",
                "✅ Enables richer user experiences",
                "✅ Necessary for many business applications",
            ],
            "green",
        )
        out.bullets(
            "💡 Hybrid Approaches:",
            [
                "Use stateless for public APIs",
                "Use stateful for user-specific features",
                "Store state client-side when possible",
                "Use JWT tokens for stateful-like behavior",
            ],
            "yellow",
        )
        if len(out.instances) > 1:
            out.say(f"\n🔀 This run was answered by {len(out.instances)} instances: "
                    + ", ".join(sorted(out.instances)))  # fmt: skip

    def summary(self) -> None:
        out = self.out
        out.section("📋 Summary: Key Differences")
        table = Table(title="What each server remembered in this run", title_justify="left")
        table.add_column("")
        table.add_column("🔵 stateless", style="blue")
        table.add_column("🟢 stateful", style="green")
        table.add_row("who you are", "nobody: no session", f"{USER}, by Session-ID")
        table.add_row("counters", f"requestCount {self.facts.get('requestCount')} (server-wide)",
                      f"visitCount {self.facts.get('visits')} (this session)")  # fmt: skip
        table.add_row("calculations", "forgotten after each answer",
                      f"{self.facts.get('calculations')} kept in the session")  # fmt: skip
        table.add_row("cart", "none", str(self.facts.get("cart")))
        table.add_row("workflow", "none", f"at step {self.facts.get('workflow')}")
        out.console.print(table)
        out.bullets(
            "⚖️  When to Use Which:",
            [
                "📱 Mobile Apps: Often stateless APIs",
                "🛒 E-commerce: Stateful for cart, stateless for catalog",
                "🌐 Content Delivery: Stateless (CDN)",
                "👥 Social Media: Stateful for user interactions",
                "🔍 Search APIs: Stateless",
                "📊 Analytics Dashboards: Stateful",
            ],
        )

    async def cleanup(self) -> None:
        self.out.section("🧹 Cleanup")
        if not self.stateful.session_id:
            return
        try:
            await self.stateful.delete_session()
        except ClientError as exc:
            self.out.say(f"⚠️  Cleanup warning (non-critical): {exc}", "yellow")
        else:
            self.out.say("✅ Stateful session cleaned up", "green")


async def run(stateless_url: str, stateful_url: str, out: Printer) -> None:
    """The whole comparison; client errors propagate to the caller, which explains them."""
    out.section("🚀 Stateless vs Stateful Comparison Demo")
    out.step(f"🔄 Comparing {stateless_url} (stateless) with {stateful_url} (stateful)...")

    def left(exchange: Exchange) -> None:
        out.exchange(exchange, "stateless")

    def right(exchange: Exchange) -> None:
        out.exchange(exchange, "stateful")

    async with (
        StatelessClient(stateless_url, on_exchange=left) as stateless,
        StatefulClient(stateful_url, on_exchange=right) as stateful,
    ):
        demo = Comparison(stateless, stateful, out)
        try:
            await demo.check_servers()
            await demo.basic_requests()
            await demo.calculations()
            await demo.data_access()
            await demo.stateful_features()
            demo.scalability()
            demo.summary()
        finally:
            await demo.cleanup()
    out.section("✅ Comparison Demo Complete")
    out.say("🎉 Comprehensive comparison completed successfully!", "green")
    out.takeaways(
        "🎓 Educational Objectives Achieved",
        [
            "Understanding of stateless vs stateful architectures",
            "Practical examples of both approaches",
            "Trade-offs and use case awareness",
            "Scalability considerations",
        ],
    )
