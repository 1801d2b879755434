"""The alerts of deploy/monitoring fire and resolve in a real Prometheus, which scrapes two real
statebridge instances on PostgreSQL (a fresh database) and a private Redis:

- Redis killed under session traffic: StatebridgeSessionsFromPostgres and StatebridgeRedisDown
  fire, StatebridgeNotReady does not (the instances stay ready); Redis started again (empty):
  both resolve;
- one instance killed (SIGKILL): StatebridgeInstanceDown fires; started again: it resolves;

and every panel of the dashboard returns at least one series from that Prometheus.

Prometheus scrapes and evaluates every second. It loads a test copy of the rules in which
every `for` is 2 s and the 1-minute rate windows of the alerts (not the SLO windows) are
10 s: the same expressions, on a time scale a test can wait for. The times from fault to
firing and from repair to resolved are printed (run with `-s` to see them); in production,
with 15 s intervals, add the scrape and evaluation intervals, the real `for` (1 min) and,
for the sessions alert, its 1-minute window to resolve.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.databases import drop_pg_database, new_pg_database
from tests.support.private_services import PrivateRedis, wait_for_port
from tests.support.recordings import ROOT
from tests.support.servers import Server, free_port
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.monitoring, pytest.mark.faults]

MONITORING = ROOT / "deploy" / "monitoring"
SHORT_FOR = "2s"
SHORT_WINDOW = "[10s]"
WAIT = 45.0  # seconds any alert may take to fire or resolve before the test fails


def shortened_rules(source: Path) -> str:
    """The rules with every `for` shortened to SHORT_FOR and the alerts' 1-minute rate
    windows to SHORT_WINDOW; all else as written."""
    doc = yaml.safe_load(source.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = SHORT_FOR
            if "alert" in rule:
                rule["expr"] = rule["expr"].replace("[1m]", SHORT_WINDOW)
    return yaml.safe_dump(doc, sort_keys=False)


@dataclass
class Prometheus:
    directory: Path
    targets: list[str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Prometheus:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.skip("prometheus is not installed (scripts/ci-install-prometheus.sh)")
        rules = self.directory / "rules"
        rules.mkdir(parents=True, exist_ok=True)
        for source in sorted((MONITORING / "rules").glob("*.yml")):
            (rules / source.name).write_text(shortened_rules(source))
        config = {
            "global": {
                "scrape_interval": "1s",
                "evaluation_interval": "1s",
                "scrape_timeout": "1s",
            },
            "rule_files": [str(path) for path in sorted(rules.glob("*.yml"))],
            "scrape_configs": [
                {"job_name": "statebridge", "static_configs": [{"targets": self.targets}]}
            ],
        }
        config_path = self.directory / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        with open(self.directory / "prometheus.log", "ab") as log:
            self.process = subprocess.Popen(
                [binary, f"--config.file={config_path}",
                 f"--storage.tsdb.path={self.directory / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}",
                 "--storage.tsdb.retention.time=1h"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for_port(self.port, 30)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.api("alerts")["alerts"])


class Traffic:
    """Session reads (and some stateless requests) on both instances, about 40 a second in
    all, from one thread; failures (an instance that is down) are counted, not raised."""

    def __init__(self, servers: list[Server]) -> None:
        self.servers = servers
        self.sessions: list[tuple[Server, str]] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Traffic:
        for server in self.servers:
            for _ in range(5):
                created = httpx.post(
                    f"{server.url}/api/stateful/session", json={"userId": "user002"}, timeout=10
                )
                self.sessions.append((server, created.headers["Session-ID"]))
        self._thread.start()
        return self

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                server, session = random.choice(self.sessions)
                try:
                    client.get(f"{server.url}/api/stateful/cart", headers={"Session-ID": session})
                    client.get(f"{server.url}/api/stateless/products")
                except httpx.HTTPError:
                    self.failures += 1
                self._stop.wait(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def matching(alerts: list[dict[str, Any]], name: str, **labels: str) -> list[dict[str, Any]]:
    return [
        alert
        for alert in alerts
        if alert["labels"]["alertname"] == name
        and all(alert["labels"].get(key) == value for key, value in labels.items())
    ]


def firing(prometheus: Prometheus, name: str, **labels: str) -> Callable[[], bool]:
    return lambda: any(
        alert["state"] == "firing" for alert in matching(prometheus.alerts(), name, **labels)
    )


def resolved(
    prometheus: Prometheus, name: str, seen: set[str], **labels: str
) -> Callable[[], bool]:
    """No such alert is pending or firing; the alerts met on the way are noted in `seen`."""

    def check() -> bool:
        alerts = prometheus.alerts()
        seen.update(described(alert) for alert in alerts)
        return not matching(alerts, name, **labels)

    return check


def described(alert: dict[str, Any]) -> str:
    reason = alert["labels"].get("reason")
    name = str(alert["labels"]["alertname"])
    return f"{name}{{reason={reason}}}" if reason else name


@dataclass
class Stack:
    redis: PrivateRedis
    servers: list[Server]
    prometheus: Prometheus
    traffic: Traffic


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with contextlib.ExitStack() as stop:
        redis = PrivateRedis(tmp_path / "redis").start()
        stop.callback(redis.stop)
        try:
            name, url = new_pg_database()
        except Exception as exc:
            pytest.skip(f"PostgreSQL is not reachable: {exc}")
        stop.callback(drop_pg_database, name)
        # a short ready timeout keeps every scrape under Prometheus's 1 s scrape timeout
        env = {"DATABASE_URL": url, "REDIS_URL": redis.url, "STATEBRIDGE_READY_TIMEOUT": "0.5"}
        servers = []
        for index in range(2):  # one after the other: the first creates the schema
            server = Server(env=env, data_dir=tmp_path / f"server{index}", args=["--migrate"])
            stop.callback(server.stop)
            servers.append(server.start())
        targets = [f"127.0.0.1:{server.port}" for server in servers]
        prometheus = Prometheus(tmp_path / "prometheus", targets).start()
        stop.callback(prometheus.stop)
        traffic = Traffic(servers).start()
        stop.callback(traffic.stop)
        yield Stack(redis, servers, prometheus, traffic)


def test_alerts_fire_on_faults_and_resolve_on_repair_and_every_panel_has_data(
    stack: Stack,
) -> None:
    prometheus, redis = stack.prometheus, stack.redis
    targets = [f"127.0.0.1:{server.port}" for server in stack.servers]
    wait_until(
        lambda: (
            len([t for t in prometheus.api("targets")["activeTargets"] if t["health"] == "up"]) == 2
        ),
        "both instances scraped",
        WAIT,
    )
    time.sleep(3)  # a few scrapes and evaluations with everything healthy
    # none of the alerts under test before the faults (the SLO alerts may see the first,
    # slower requests after a start; the backup alert fires: this database has none)
    under_test = {
        "StatebridgeInstanceDown",
        "StatebridgeNotReady",
        "StatebridgeRedisDown",
        "StatebridgeSessionsFromPostgres",
    }
    early = [alert for alert in prometheus.alerts() if alert["labels"]["alertname"] in under_test]
    assert early == [], early
    figures: list[tuple[str, str, float]] = []
    seen: set[str] = set()

    def note_alerts() -> None:
        seen.update(described(alert) for alert in prometheus.alerts())

    # -- Redis killed, then started again (empty) ---------------------------------------
    redis.kill()
    fault = time.monotonic()
    for name, labels in (
        ("StatebridgeSessionsFromPostgres", {"reason": "unavailable"}),
        ("StatebridgeRedisDown", {"dependency": "redis"}),
    ):
        wait_until(
            firing(prometheus, name, **labels), f"{name} firing after Redis was killed", WAIT
        )
        figures.append(("Redis killed", name, time.monotonic() - fault))
    for target in targets:  # both instances report it
        wait_until(
            firing(prometheus, "StatebridgeRedisDown", instance=target, dependency="redis"),
            f"StatebridgeRedisDown firing for {target}",
            WAIT,
        )
    # the same `for` on the same series: had Redis made the instances not ready, it would be
    # firing by now
    names = {alert["labels"]["alertname"] for alert in prometheus.alerts()}
    assert "StatebridgeNotReady" not in names, names
    note_alerts()
    redis.start()
    repair = time.monotonic()
    for name in ("StatebridgeRedisDown", "StatebridgeSessionsFromPostgres"):
        wait_until(resolved(prometheus, name, seen), f"{name} resolved after Redis was back", WAIT)
        figures.append(("Redis started again", name, time.monotonic() - repair))

    # -- one instance killed, then started again ----------------------------------------
    victim = stack.servers[1]
    victim.stop(signal.SIGKILL)
    fault = time.monotonic()
    down = {"instance": f"127.0.0.1:{victim.port}"}
    wait_until(firing(prometheus, "StatebridgeInstanceDown", **down), "instance down firing", WAIT)
    figures.append(("instance SIGKILLed", "StatebridgeInstanceDown", time.monotonic() - fault))
    note_alerts()
    victim.start()
    repair = time.monotonic()
    wait_until(
        resolved(prometheus, "StatebridgeInstanceDown", seen), "instance down resolved", WAIT
    )
    figures.append(("instance started again", "StatebridgeInstanceDown", time.monotonic() - repair))

    # -- every dashboard panel returns data ---------------------------------------------
    time.sleep(2)  # the restarted instance scraped again
    board = json.loads((MONITORING / "grafana" / "statebridge.json").read_text())
    counts: list[tuple[str, int]] = []
    for panel in board["panels"]:
        for target in panel["targets"]:
            result = prometheus.api("query", query=target["expr"])["result"]
            counts.append((panel["title"], len(result)))
    print("\nfault -> alert firing / repair -> resolved (scrape and evaluation every 1 s,")
    print(f"`for` {SHORT_FOR}, the alerts' 1-minute windows {SHORT_WINDOW}):")
    for event, name, seconds in figures:
        print(f"  {event:<24} {name:<34} {seconds:5.1f} s")
    print(f"alerts pending or firing during the faults and repairs: {sorted(seen)}")
    print(f"requests that failed (to the killed instance): {stack.traffic.failures}")
    print("dashboard panels: series returned")
    for title, count in counts:
        print(f"  {title:<52} {count}")
    assert len(counts) == len(board["panels"]) >= 10
    empty = [title for title, count in counts if count == 0]
    assert empty == [], f"panels without data: {empty}"
