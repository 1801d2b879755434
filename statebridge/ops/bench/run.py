"""Running the benchmark: prepare sessions, alternate targets run by run, soak for memory."""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from statebridge.ops.bench import cpu, disk, loadgen, wrk
from statebridge.ops.bench.model import DEFAULT_ENDPOINTS, MIX, Result, Scenario, Target, scenarios
from statebridge.ops.bench.report import machine, summarise
from statebridge.wording import counted

Say = Callable[[str], None]


@dataclass
class Options:
    seconds: int = 10
    warmup: int = 2
    connections: int = 50
    threads: int = 1
    rounds: int = 1
    sessions: int = 50
    endpoints: tuple[str, ...] = DEFAULT_ENDPOINTS
    stateful: bool = True
    engine: str = "auto"  # auto | wrk | python
    timeout: float = 5.0
    insecure: bool = False
    soak: int = 0  # seconds of stateful mix while RSS is sampled; 0 = no soak
    disk: str | None = None  # a block device to watch for stalls during each run

    def resolved_engine(self) -> str:
        if self.engine == "auto":
            return "wrk" if wrk.wrk_path() else "python"
        if self.engine == "wrk" and not wrk.wrk_path():
            raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
        return self.engine


def prepare(target: Target, count: int, insecure: bool) -> None:
    """Create `count` live sessions on the target, and learn its product ids."""
    try:
        create_sessions(target, count, insecure)
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        raise RuntimeError(f"{target.name} ({target.url}, {target.stateful_url}): {exc}") from exc


def create_sessions(target: Target, count: int, insecure: bool) -> None:
    with httpx.Client(verify=not insecure, timeout=10.0) as client:
        users = client.get(f"{target.url}/users").raise_for_status().json()["data"]["users"]
        goods = client.get(f"{target.url}/products").raise_for_status().json()["data"]
        target.products = [product["id"] for product in goods["products"]]
        target.sessions = []
        for i in range(count):
            answer = client.post(
                f"{target.stateful_url}/session", json={"userId": users[i % len(users)]["id"]}
            ).raise_for_status()
            target.sessions.append(answer.json()["data"]["session"]["id"])
    if not target.products or not target.sessions:
        raise RuntimeError(f"{target.name}: no products or sessions to drive the stateful mix")


class Runner:
    def __init__(self, options: Options, workdir: Path) -> None:
        self.options = options
        self.engine = options.resolved_engine()
        self.workdir = workdir
        self.plain_script, self.mix_script = wrk.write_scripts(workdir)

    def load(self, target: Target, scenario: Scenario, seconds: int) -> dict[str, Any]:
        """One load run; wrk's done() numbers or the Python engine's, same keys."""
        o = self.options
        if self.engine == "wrk":
            if scenario.stateful:
                sessions = self.workdir / f"sessions-{target.name.replace(' ', '_')}.txt"
                wrk.write_sessions(sessions, target.sessions, target.products)
                origin, base = wrk.origin_and_path(target.stateful_url)
                return wrk.run(
                    origin,
                    self.mix_script,
                    [str(sessions), base],
                    seconds,
                    o.connections,
                    o.threads,
                    o.timeout,
                )
            url = f"{target.url}{scenario.path}"
            return wrk.run(url, self.plain_script, [], seconds, o.connections, o.threads, o.timeout)
        if scenario.stateful:
            make = loadgen.mix_requests(target.stateful_url, target.sessions, target.products)
            url = target.stateful_url
        else:
            make = loadgen.get_request(target.url, scenario.path)
            url = target.url
        return loadgen.run(url, make, seconds, o.connections, o.timeout, o.insecure)

    def measure(self, target: Target, scenario: Scenario, round_no: int) -> Result:
        if self.options.warmup > 0:
            self.load(target, scenario, self.options.warmup)
        watch = disk.Watch(self.options.disk) if self.options.disk else None
        cpu_before, machine_before = cpu.read(target.pids), cpu.machine_times()
        with watch or contextlib.nullcontext():
            data = self.load(target, scenario, self.options.seconds)
        cpu_after, machine_after = cpu.read(target.pids), cpu.machine_times()
        cpu_total, cpu_by_pid = cpu.spent(cpu_before, cpu_after)
        socket_errors = data.get("socket", 0) + sum(
            data.get(key, 0) for key in ("connect", "read", "write", "timeout")
        )
        return Result(
            target=target.name,
            scenario=scenario.name,
            round=round_no,
            responses=int(data["requests"]),
            seconds=data["duration_us"] / 1_000_000,
            status_errors=int(data["status"]),
            socket_errors=int(socket_errors),
            p50_ms=data["p50"] / 1000,
            p90_ms=data["p90"] / 1000,
            p99_ms=data["p99"] / 1000,
            max_ms=data["max"] / 1000,
            cpu_seconds=cpu_total,
            machine_busy_percent=cpu.busy_percent(machine_before, machine_after),
            cpu_by_pid=cpu_by_pid if len(target.pids) > 1 else {},
            disk_stall_ms=watch.stall_ms if watch else None,
        )

    def soak(self, target: Target, say: Say) -> dict[str, Any]:
        """Run the stateful mix for `soak` seconds while sampling the server's RSS each second
        (from its /health); growth is measured from the end of the warm-up (a sixth of the
        run, at least 5 s) to the end."""
        seconds = self.options.soak
        warmup = max(5.0, seconds / 6)
        samples: list[tuple[float, int]] = []
        stop = threading.Event()

        def sample() -> None:
            started = time.monotonic()
            with httpx.Client(verify=not self.options.insecure, timeout=5.0) as client:
                while not stop.is_set():
                    try:
                        health = client.get(f"{target.url}/health").json()
                        rss = int(health["data"]["memory"]["rss"])
                        samples.append((time.monotonic() - started, rss))
                    except (httpx.HTTPError, KeyError, ValueError):
                        pass
                    stop.wait(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        scenario = Scenario(MIX) if self.options.stateful else Scenario("GET /users", "/users")
        try:
            self.load(target, scenario, seconds)
        finally:
            stop.set()
            sampler.join(10)
        after = [rss for at, rss in samples if at >= warmup] or [rss for _, rss in samples]
        if not after:
            raise RuntimeError(f"{target.name}: /health gave no memory readings")
        growth = 100.0 * (after[-1] - after[0]) / after[0]
        say(f"  soak {target.name}: RSS {after[0] / 2**20:.1f} -> {after[-1] / 2**20:.1f} MiB")
        return {
            "seconds": seconds,
            "scenario": scenario.name,
            "warmup_seconds": warmup,
            "rss_after_warmup": after[0],
            "rss_end": after[-1],
            "rss_max": max(rss for _, rss in samples),
            "growth_percent": round(growth, 2),
            "samples": samples,
        }


def benchmark(targets: list[Target], options: Options, say: Say) -> dict[str, Any]:
    """Every scenario against every target, alternating (A B, then B A on the next round)."""
    with tempfile.TemporaryDirectory(prefix="statebridge-bench-") as tmp:
        runner = Runner(options, Path(tmp))
        if options.stateful or options.soak:
            for target in targets:
                say(f"creating {counted(options.sessions, 'session')} on {target.name} ...")
                prepare(target, options.sessions, options.insecure)
        plan = scenarios(options.endpoints, options.stateful)
        results: list[Result] = []
        for scenario in plan:
            for round_no in range(1, options.rounds + 1):
                order = targets if round_no % 2 else list(reversed(targets))
                for target in order:
                    result = runner.measure(target, scenario, round_no)
                    results.append(result)
                    say(
                        f"  {scenario.name:<34} {target.name:<12} {result.rps:>10,.0f} req/s"
                        f"  p99 {result.p99_ms:7.2f} ms  errors {result.errors}"
                    )
        memory = {}
        if options.soak:
            for target in targets:
                memory[target.name] = runner.soak(target, say)
        engine = wrk.version() if runner.engine == "wrk" else "python asyncio (statebridge)"
    names = [target.name for target in targets]
    return {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "engine": engine,
        "options": {
            "seconds": options.seconds,
            "warmup": options.warmup,
            "connections": options.connections,
            "threads": options.threads,
            "rounds": options.rounds,
            "sessions": options.sessions,
            "disk": options.disk,
        },
        "targets": [
            {"name": t.name, "url": t.url, "stateful_url": t.stateful_url, "pids": list(t.pids)}
            for t in targets
        ],
        "results": [result.as_dict() for result in results],
        "summary": summarise(results, names),
        "memory": memory,
    }
