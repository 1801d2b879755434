"""The verdict of a run and the report that explains it."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from statebridge.ops.soak.instances import Instance
from statebridge.ops.soak.users import SharedSession, Stats
from statebridge.wording import counted

RSS_GROWTH_LIMIT = 0.10


@dataclass
class Result:
    seconds: float
    connections: int
    instances: list[Instance]
    stats: Stats
    sessions: list[SharedSession]
    problems: list[str]

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.stats.statuses.items() if status >= 500)

    def rss_verdict(self, instance: Instance) -> tuple[str, bool]:
        samples = [rss for _, rss in instance.rss]
        if len(samples) < 4:
            return "too few samples", False
        quarter = max(1, len(samples) // 4)
        warm = statistics.median(samples[quarter : 2 * quarter])
        last = statistics.median(samples[-quarter:])
        growth = (last - warm) / warm
        flat = growth <= RSS_GROWTH_LIMIT
        text = (
            f"start {samples[0] / 2**20:.1f} MiB, after warm-up {warm / 2**20:.1f} MiB, "
            f"end {last / 2**20:.1f} MiB ({growth:+.1%} after warm-up): "
            + ("flat" if flat else "GROWING")
        )
        return text, flat

    @property
    def passed(self) -> bool:
        return (
            self.server_errors == 0
            and not self.stats.socket_errors
            and not self.problems
            and all(self.rss_verdict(instance)[1] for instance in self.instances)
        )

    def as_dict(self) -> dict[str, Any]:
        """The report as data, for `statebridge soak --json` (latencies in milliseconds)."""
        stats = self.stats
        everything = sorted(value for values in stats.latencies.values() for value in values)
        memory = []
        for instance in self.instances:
            text, flat = self.rss_verdict(instance)
            memory.append(
                {
                    "url": instance.url,
                    "flat": flat,
                    "verdict": text,
                    "rss_bytes": [rss for _, rss in instance.rss],
                }
            )
        return {
            "passed": self.passed,
            "seconds": round(self.seconds, 3),
            "connections": self.connections,
            "instances": [instance.url for instance in self.instances],
            "shared_sessions": len(self.sessions),
            "requests": stats.requests,
            "server_errors": self.server_errors,
            "statuses": {str(status): count for status, count in sorted(stats.statuses.items())},
            "unexpected": dict(stats.unexpected),
            "socket_errors": dict(stats.socket_errors),
            "latency_ms": latency_ms(everything),
            "latency_ms_by_request": {
                name: latency_ms(sorted(values)) for name, values in sorted(stats.latencies.items())
            },
            "acknowledged_writes": {
                "cart_quantity": sum(sum(s.quantities.values()) for s in self.sessions),
                "visits": sum(session.visits for session in self.sessions),
                "session_keys": sum(len(session.data) for session in self.sessions),
                "lost_or_wrong": self.problems,
            },
            "memory": memory,
        }

    def report(self) -> str:
        stats = self.stats
        everything = sorted(value for values in stats.latencies.values() for value in values)
        lines = [
            f"statebridge soak: {self.seconds:.0f} s, {counted(self.connections, 'connection')}, "
            f"stateful mix, {counted(len(self.instances), 'instance')} "
            f"({counted(len(self.sessions), 'shared session')})",
            f"  requests: {stats.requests} ({stats.requests / self.seconds:.0f}/s); "
            f"5xx: {self.server_errors}; other non-200: "
            f"{sum(stats.unexpected.values()) - self.server_errors}; "
            f"socket errors: {sum(stats.socket_errors.values())}",
            f"  latency (ms): {percentiles(everything)}",
        ]
        width = max(len(name) for name in stats.latencies) if stats.latencies else 0
        for name, values in sorted(stats.latencies.items()):
            ordered = sorted(values)
            lines.append(f"    {name:<{width}}  {len(ordered):>8}  {percentiles(ordered)}")
        if stats.unexpected:
            lines.append(f"  unexpected answers: {dict(stats.unexpected)}")
        if stats.socket_errors:
            lines.append(f"  socket errors: {dict(stats.socket_errors)}")
        adds = sum(sum(session.quantities.values()) for session in self.sessions)
        updates = sum(len(session.data) for session in self.sessions)
        visits = sum(session.visits for session in self.sessions)
        lines.append(
            f"  acknowledged writes checked: cart quantity {adds}, visits {visits}, "
            f"session keys {updates}: {len(self.problems)} lost or wrong"
        )
        lines.extend(f"    {problem}" for problem in self.problems[:20])
        for instance in self.instances:
            text, _ = self.rss_verdict(instance)
            lines.append(f"  RSS {instance.url}: {text}")
        lines.append("  verdict: " + ("PASS" if self.passed else "FAIL"))
        return "\n".join(lines)


def latency_ms(ordered: list[float]) -> dict[str, float] | None:
    if not ordered:
        return None

    def at(fraction: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000, 3)

    return {
        "count": len(ordered),
        "p50": at(0.5),
        "p90": at(0.9),
        "p99": at(0.99),
        "max": round(ordered[-1] * 1000, 3),
    }


def percentiles(ordered: list[float]) -> str:
    if not ordered:
        return "no requests"

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000

    return f"p50 {at(0.5):.1f}  p90 {at(0.9):.1f}  p99 {at(0.99):.1f}  max {ordered[-1] * 1000:.1f}"
