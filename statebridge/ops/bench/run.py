"""Running the benchmark: prepare sessions, alternate targets run by run, soak for memory."""

from __future__ import annotations

import contextlib
import re
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
from statebridge.ops.bench.cases import DEFAULT_ENDPOINTS, MIX, Case, endpoint_cases
from statebridge.ops.bench.model import Result, Target
from statebridge.ops.bench.prepare import prepare
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
    cases: tuple[Case, ...] | None = None  # None: the GETs of `endpoints`, then the mix

    def plan(self) -> list[Case]:
        if self.cases is not None:
            return [case for case in self.cases if self.stateful or case.face == "stateless"]
        return endpoint_cases(self.endpoints, self.stateful)

    def soak_case(self) -> Case:
        return MIX if self.stateful else endpoint_cases(("/users",), False)[0]

    def resolved_engine(self) -> str:
        if self.engine == "auto":
            return "wrk" if wrk.wrk_path() else "python"
        if self.engine == "wrk" and not wrk.wrk_path():
            raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
        return self.engine


REFRESH_AFTER = 600.0  # seconds: new sessions before the old ones can expire (15 min)


def needs(plan: list[Case], soak_mix: bool) -> tuple[bool, bool]:
    """Whether the plan needs the catalog's ids, and whether it needs live sessions."""
    sessions = soak_mix or any(case.needs_sessions for case in plan)
    catalog = sessions or any(case.flow or any(s.varies for s in case.steps) for case in plan)
    return catalog, sessions


OPENED = re.compile(r"^statebridge_db_connections_opened_total\{[^}]*\} (\d+)$", re.M)


def connections_opened(url: str, insecure: bool) -> int | None:
    """Database connections the server has opened so far, from its /metrics (every pool);
    None when it has no such metric (Phase 1)."""
    try:
        answer = httpx.get(f"{url}/metrics", timeout=5.0, verify=not insecure)
    except httpx.HTTPError:
        return None
    found = OPENED.findall(answer.text) if answer.status_code == 200 else []
    return sum(int(value) for value in found) if found else None


class Runner:
    def __init__(self, options: Options, workdir: Path) -> None:
        self.options = options
        self.engine = options.resolved_engine()
        self.workdir = workdir
        self.static_script, self.dynamic_script = wrk.write_scripts(workdir)

    def load(self, target: Target, case: Case, seconds: int) -> dict[str, Any]:
        """One load run; wrk's done() numbers or the Python engine's, same keys."""
        o = self.options
        if case.flow:
            flows = loadgen.flows_async(target, case, seconds, o.connections, o.timeout, o.insecure)
            return loadgen.on_fresh_loop(flows)
        url = target.url_of(case.face)
        if self.engine == "wrk":
            spec = self.workdir / f"spec-{target.name.replace(' ', '_')}.txt"
            origin, base = wrk.origin_and_path(url)
            wrk.write_spec(spec, case, target, base)
            static = wrk.is_static(case)
            script = self.static_script if static else self.dynamic_script
            return wrk.run(
                origin,
                script,
                [str(spec), str(o.threads)],
                seconds,
                o.connections,
                o.threads,
                o.timeout,
            )
        make = loadgen.case_requests(target, case)
        return loadgen.run(url, make, seconds, o.connections, o.timeout, o.insecure)

    def measure(self, target: Target, case: Case, round_no: int) -> Result:
        if self.options.warmup > 0:
            self.load(target, case, self.options.warmup)
        watch = disk.Watch(self.options.disk) if self.options.disk else None
        opened_before = connections_opened(target.url, self.options.insecure)
        cpu_before, machine_before = cpu.read(target.pids), cpu.machine_times()
        with watch or contextlib.nullcontext():
            data = self.load(target, case, self.options.seconds)
        cpu_after, machine_after = cpu.read(target.pids), cpu.machine_times()
        opened_after = connections_opened(target.url, self.options.insecure)
        cpu_total, cpu_by_pid = cpu.spent(cpu_before, cpu_after)
        socket_errors = data.get("socket", 0) + sum(
            data.get(key, 0) for key in ("connect", "read", "write", "timeout")
        )
        return Result(
            target=target.name,
            scenario=case.name,
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
            connections_opened=(
                opened_after - opened_before
                if opened_before is not None and opened_after is not None
                else None
            ),
            engine="python" if case.flow else self.engine,
            flows=data.get("flows"),
            flow_unit=case.unit,
            bytes_read=data.get("bytes"),
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
        case = self.options.soak_case()
        try:
            self.load(target, case, seconds)
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
            "scenario": case.name,
            "warmup_seconds": warmup,
            "rss_after_warmup": after[0],
            "rss_end": after[-1],
            "rss_max": max(rss for _, rss in samples),
            "growth_percent": round(growth, 2),
            "samples": samples,
        }


def benchmark(targets: list[Target], options: Options, say: Say) -> dict[str, Any]:
    """Every case against every target, alternating (A B, then B A on the next round)."""
    plan = options.plan()
    catalog, sessions = needs(plan, options.soak > 0 and options.stateful)
    workflow = any(case.workflow for case in plan)

    def prepare_target(target: Target) -> None:
        if sessions:
            wanted = counted(options.sessions, "session", grouped=True)
            say(f"creating {wanted} on {target.name} ...")
        count = options.sessions if sessions else 0
        prepare(target, count, workflow, options.insecure, say, max(10.0, options.timeout))

    with tempfile.TemporaryDirectory(prefix="statebridge-bench-") as tmp:
        runner = Runner(options, Path(tmp))
        if catalog:
            for target in targets:
                prepare_target(target)
        results: list[Result] = []
        for case in plan:
            for round_no in range(1, options.rounds + 1):
                order = targets if round_no % 2 else list(reversed(targets))
                for target in order:
                    if case.needs_sessions and time.monotonic() > (
                        target.sessions_created + REFRESH_AFTER
                    ):
                        prepare_target(target)  # Phase 1's sessions end 15 min after creation
                    result = runner.measure(target, case, round_no)
                    results.append(result)
                    say(
                        f"  {case.name:<42} {target.name:<12} {result.rps:>10,.0f} req/s"
                        f"  p99 {result.p99_ms:7.2f} ms  errors {result.errors}"
                    )
        memory = {}
        if options.soak:
            for target in targets:
                memory[target.name] = runner.soak(target, say)
        engine = wrk.version() if runner.engine == "wrk" else "python asyncio (statebridge)"
        if runner.engine == "wrk" and any(case.flow for case in plan):
            engine += "; flows: python asyncio (statebridge)"
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
            "cases": [case.name for case in plan],
        },
        "targets": [
            {"name": t.name, "url": t.url, "stateful_url": t.stateful_url, "pids": list(t.pids)}
            for t in targets
        ],
        "results": [result.as_dict() for result in results],
        "summary": summarise(results, names),
        "memory": memory,
    }
