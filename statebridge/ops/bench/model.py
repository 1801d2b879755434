"""What a benchmark run is made of: targets and measured results (cases.py: what is sent)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from statebridge.ops.bench.cases import Face


@dataclass
class Target:
    """One server under test: its base URLs, and what the cases' requests are made of."""

    name: str
    url: str
    stateful_url: str
    pids: tuple[int, ...] = ()  # when local: their CPU time (with children) is read from /proc
    # (session id, its user), created before the runs; when, as time.monotonic()
    sessions: list[tuple[str, str]] = field(default_factory=list)
    sessions_created: float = 0.0
    users: list[str] = field(default_factory=list)
    preferences: dict[str, str] = field(default_factory=dict)  # user id -> its JSON
    products: list[str] = field(default_factory=list)

    def url_of(self, face: Face) -> str:
        return self.url if face == "stateless" else self.stateful_url


@dataclass
class Result:
    """One measured run of one scenario against one target."""

    target: str
    scenario: str
    round: int
    responses: int
    seconds: float
    status_errors: int  # answers with status >= 400 (in a flow: any status but 2xx)
    socket_errors: int  # connect/read/write errors and timeouts: no answer at all
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    cpu_seconds: float | None = None  # of the target's --pid processes, children included
    machine_busy_percent: float | None = None  # of all CPUs, whoever used them
    cpu_by_pid: dict[int, float] = field(default_factory=dict)  # each --pid's share
    disk_stall_ms: float | None = None  # longest time the --disk device completed nothing
    # database connections the server opened during the run (its /metrics; None without)
    connections_opened: int | None = None
    engine: str = ""  # wrk | python
    flows: int | None = None  # a flow case's complete passes (lifecycles, sessions ended)
    flow_unit: str = ""
    bytes_read: int | None = None  # of every answer, heads included (wrk's count, or ours)

    @property
    def rps(self) -> float:
        return self.responses / self.seconds if self.seconds > 0 else 0.0

    @property
    def errors(self) -> int:
        return self.status_errors + self.socket_errors

    @property
    def success_rate(self) -> float:
        attempts = self.responses + self.socket_errors
        return (self.responses - self.status_errors) / attempts if attempts else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rps"] = round(self.rps, 1)
        data["errors"] = self.errors
        data["success_rate"] = round(self.success_rate, 6)
        if self.cpu_seconds is not None and self.seconds > 0:
            data["cpu_percent"] = round(100 * self.cpu_seconds / self.seconds, 1)
        if self.cpu_seconds is not None and self.responses > 0:
            data["cpu_us_per_request"] = round(1e6 * self.cpu_seconds / self.responses, 1)
        data["cpu_by_pid"] = {str(pid): seconds for pid, seconds in self.cpu_by_pid.items()}
        if self.bytes_read is not None and self.responses > 0:
            data["bytes_per_answer"] = round(self.bytes_read / self.responses)
        if self.flows is not None and self.seconds > 0:
            data["flows_per_s"] = round(self.flows / self.seconds, 1)
        if self.machine_busy_percent is not None:
            data["machine_busy_percent"] = round(self.machine_busy_percent, 1)
        return data
