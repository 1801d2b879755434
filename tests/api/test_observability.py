"""Probes, metrics, request ids and the JSON access log, read from real servers."""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.envelope import assert_envelope
from tests.support.metrics import (
    COMMENT,
    TARGET_LABELS,
    parse_metrics,
    scrape,
    value,
)
from tests.support.private_services import own_server
from tests.support.servers import Server, free_port

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def access_lines(server: Server) -> list[dict[str, Any]]:
    lines = []
    for line in server.log().splitlines():
        if '"statebridge.access"' in line:
            lines.append(json.loads(line))
    return lines


def wait_for_lines(server: Server, marker: str, count: int) -> list[dict[str, Any]]:
    """The access lines of our requests: each is written just after its response is sent,
    so the last one may trail the response by a moment."""
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in access_lines(server) if line["requestId"].startswith(marker)]
        if len(lines) >= count or time.monotonic() > deadline:
            assert len(lines) == count, lines
            return lines
        time.sleep(0.05)


@pytest.fixture(
    scope="module", params=["embedded", pytest.param("services", marks=pytest.mark.services)]
)
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp(f"observability-{request.param}")
    with own_server(request.param, directory) as server:
        yield server


@pytest.fixture
def http(target: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=target.url, timeout=30) as client:
        yield client


# -- probes -------------------------------------------------------------------------------------


def test_live_answers_in_the_envelope(http: httpx.Client) -> None:
    body = assert_envelope(http.get("/health/live"), 200)
    assert body["message"] == "Service is alive"
    assert body["data"]["status"] == "alive"
    assert body["data"]["instanceId"] == http.get("/health/live").headers["x-instance-id"]


def test_ready_checks_every_component(http: httpx.Client, target: Server) -> None:
    body = assert_envelope(http.get("/health/ready"), 200)
    assert body["message"] == "Service is ready"
    components = body["data"]["components"]
    expected = {"database", "redis"} if "REDIS_URL" in target.env else {"database"}
    assert set(components) == expected
    for component in components.values():
        assert component["status"] == "up"
        assert component["latencyMs"] >= 0
    assert body["data"]["degraded"] is False


def test_probes_answer_on_every_face(target: Server) -> None:
    for base in (target.url, target.stateless_url, target.stateful_url):
        assert_envelope(httpx.get(f"{base}/health/live"), 200)
        assert_envelope(httpx.get(f"{base}/health/ready"), 200)
    # and Phase 1's /health is still there, unchanged
    body = assert_envelope(httpx.get(f"{target.url}/health"), 200)
    assert body["message"] == "Stateless server is healthy"


def test_ready_is_200_and_degraded_when_redis_is_down(
    services_env: dict[str, str], tmp_path: Path
) -> None:
    """Redis down: the instance still serves every route from the database, so it stays
    ready (a 503 would take every instance out of rotation at once) and says it is degraded;
    the database down is what makes it not ready."""
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    env = {"DATABASE_URL": services_env["DATABASE_URL"], "REDIS_URL": dead_redis}
    server = Server(env=env, data_dir=tmp_path, args=["--migrate"]).start()
    try:
        response = httpx.get(f"{server.url}/health/ready", timeout=30)
        body = assert_envelope(response, 200)
        assert body["message"] == "Service is ready (degraded: redis is down)"
        assert body["data"]["status"] == "ready"
        assert body["data"]["degraded"] is True
        components = body["data"]["components"]
        assert components["redis"] == {"status": "down", "error": "ConnectionError"}
        assert components["database"]["status"] == "up"
        # liveness does not depend on Redis
        assert_envelope(httpx.get(f"{server.url}/health/live"), 200)
        scraped = httpx.get(f"{server.url}/metrics", timeout=30).text
        assert 'statebridge_dependency_up{dependency="redis"} 0' in scraped
        assert 'statebridge_dependency_up{dependency="database"} 1' in scraped
    finally:
        server.stop()


# -- metrics ------------------------------------------------------------------------------------


def test_metrics_count_requests_by_route_template(http: httpx.Client) -> None:
    before = scrape(http)
    route = "/users/{user_id}"
    for _ in range(3):
        assert http.get("/users/user001").status_code == 200
    for index in range(2):
        assert http.get(f"/users/nobody-{index}-{uuid.uuid4()}").status_code == 404
    after = scrape(http)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "statebridge_http_requests_total"
    assert delta(requests, route=route, method="GET", status="200") == 3
    assert delta(requests, route=route, method="GET", status="404") == 2
    histogram = "statebridge_http_request_duration_seconds"
    assert delta(f"{histogram}_count", route=route, method="GET") == 5
    assert delta(f"{histogram}_bucket", route=route, method="GET", le="+Inf") == 5
    assert delta(f"{histogram}_sum", route=route, method="GET") > 0
    # no raw id ever becomes a label value
    assert not any("nobody" in str(labels) for _, labels, _ in after)


def test_unknown_paths_share_one_label(http: httpx.Client) -> None:
    for _ in range(20):
        assert http.get(f"/no/such/{uuid.uuid4()}").status_code == 404
    samples = scrape(http)
    routes = {labels.get("route") for name, labels, _ in samples if "route" in labels}
    assert "unmatched" in routes
    assert all(route is not None and "no/such" not in route for route in routes)
    assert value(samples, "statebridge_http_requests_total", route="unmatched", status="404") >= 20


def test_histogram_buckets_are_cumulative(http: httpx.Client) -> None:
    http.get("/health")
    samples = scrape(http)
    series: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for name, labels, number in samples:
        if name == "statebridge_http_request_duration_seconds_bucket":
            bound = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
            series.setdefault((labels["route"], labels["method"]), []).append((bound, number))
    assert series
    for key, buckets in series.items():
        counts = [count for _, count in sorted(buckets)]
        assert counts == sorted(counts), key
        total = value(
            samples,
            "statebridge_http_request_duration_seconds_count",
            route=key[0],
            method=key[1],
        )
        assert counts[-1] == total


def test_metrics_report_sessions_and_store_health(http: httpx.Client, target: Server) -> None:
    for _ in range(2):
        created = http.post("/api/stateful/session", json={"userId": "user002"})
        headers = {"Session-ID": created.headers["Session-ID"]}
        assert http.get("/api/stateful/cart", headers=headers).status_code == 200
    samples = scrape(http)
    assert value(samples, "statebridge_active_sessions") >= 2
    assert {labels["store"] for name, labels, _ in samples if name.endswith("store_errors_total")}
    assert value(samples, "statebridge_http_requests_in_flight") >= 1  # the scrape itself
    assert value(samples, "process_resident_memory_bytes") > 0
    # what start-up built is out of the collector's way (full collections took 40-50 ms)
    assert value(samples, "statebridge_gc_frozen_objects") > 10_000
    info = [labels for name, labels, _ in samples if name == "statebridge_info"]
    assert info == [
        {
            "instance_id": http.get("/health/live").headers["x-instance-id"],
            "version": info[0]["version"],
        }
    ]
    if "REDIS_URL" in target.env:  # the session cache answered those lookups
        assert (
            value(samples, "statebridge_cache_requests_total", cache="sessions", result="hit") >= 2
        )


def test_metrics_report_what_the_alerts_need(http: httpx.Client, target: Server) -> None:
    """The gauges and counters deploy/monitoring's rules use, on both configurations."""
    created = http.post("/api/stateful/session", json={"userId": "user002"})
    assert http.get("/api/stateful/cart", headers={"Session-ID": created.headers["Session-ID"]})
    samples = scrape(http)
    assert value(samples, "statebridge_dependency_up", dependency="database") == 1
    redis_up = [found for name, found, _ in samples if found.get("dependency") == "redis"]
    assert redis_up == ([{"dependency": "redis"}] if "REDIS_URL" in target.env else [])
    if redis_up:
        assert value(samples, "statebridge_dependency_up", dependency="redis") == 1
    # no backup was made of this fresh database: 0, which the backup alert takes as too old
    assert [
        number for name, _, number in samples if name.startswith("statebridge_last_backup")
    ] == [0]
    pools = {found["pool"] for name, found, _ in samples if name.startswith("statebridge_db_pool")}
    assert pools == ({"asyncpg", "sqlalchemy"} if "REDIS_URL" in target.env else {"sqlalchemy"})
    for pool in pools:
        most = value(samples, "statebridge_db_pool_connections_max", pool=pool)
        assert 0 <= value(samples, "statebridge_db_pool_connections_in_use", pool=pool) <= most
        assert most == 10
    reasons = {
        found["reason"]: number
        for name, found, number in samples
        if name == "statebridge_session_fallback_reads_total"
    }
    assert reasons == {"missed": 0, "unavailable": 0}  # Redis (when there is one) held it


# the families prometheus_client's default collectors write: (type, HELP)
STANDARD_FAMILIES = {
    "process_cpu_seconds_total": ("counter", "Total user and system CPU time spent in seconds."),
    "process_resident_memory_bytes": ("gauge", "Resident memory size in bytes."),
    "process_virtual_memory_bytes": ("gauge", "Virtual memory size in bytes."),
    "process_open_fds": ("gauge", "Number of open file descriptors."),
    "process_max_fds": ("gauge", "Maximum number of open file descriptors."),
    "process_start_time_seconds": (
        "gauge",
        "Start time of the process since unix epoch in seconds.",
    ),
    "python_gc_objects_collected_total": ("counter", "Objects collected during gc"),
    "python_gc_objects_uncollectable_total": ("counter", "Uncollectable object found during GC"),
    "python_gc_collections_total": ("counter", "Number of times this generation was collected"),
    "python_info": ("gauge", "Python platform information"),
}


def declarations(text: str) -> dict[str, tuple[str, str]]:
    """Each family's (type, HELP)."""
    helps: dict[str, str] = {}
    kinds: dict[str, str] = {}
    for line in text.splitlines():
        comment = COMMENT.match(line)
        if comment and comment["keyword"] == "HELP":
            helps[comment["name"]] = comment["text"]
        elif comment:
            kinds[comment["name"]] = comment["text"]
    return {name: (kinds[name], helps[name]) for name in kinds}


def proc_started_at(pid: int) -> float:
    """When process `pid` started, Unix epoch, as Linux tells it (proc(5): field 22 of
    /proc/PID/stat, in clock ticks after `btime` of /proc/stat)."""
    boot = next(
        float(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime ")
    )
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def test_the_standard_process_and_python_families(http: httpx.Client, target: Server) -> None:
    response = http.get("/metrics")
    samples = parse_metrics(response.text)
    declared = declarations(response.text)
    for name, declaration in STANDARD_FAMILIES.items():
        assert declared.get(name) == declaration, name
    assert value(samples, "process_cpu_seconds_total") > 0
    resident = value(samples, "process_resident_memory_bytes")
    assert 0 < resident <= value(samples, "process_virtual_memory_bytes")
    open_fds = value(samples, "process_open_fds")
    assert 0 < open_fds <= value(samples, "process_max_fds")
    assert target.process is not None
    limits = Path(f"/proc/{target.process.pid}/limits").read_text()
    soft_limit = next(line for line in limits.splitlines() if line.startswith("Max open files"))
    assert value(samples, "process_max_fds") == float(soft_limit.split()[3])
    # the process answering: the server itself, or a worker it started after it
    started = value(samples, "process_start_time_seconds")
    assert proc_started_at(target.process.pid) <= started <= time.time()
    for name in ("python_gc_objects_collected_total", "python_gc_collections_total"):
        generations = {labels["generation"] for sample, labels, _ in samples if sample == name}
        assert generations == {"0", "1", "2"}, name
    assert value(samples, "python_gc_collections_total") > 0  # start-up collects once at least
    info = [labels for name, labels, _ in samples if name == "python_info"]
    major, minor, patchlevel = platform.python_version_tuple()  # the server runs this Python
    assert info == [
        {
            "implementation": platform.python_implementation(),
            "major": major,
            "minor": minor,
            "patchlevel": patchlevel,
            "version": platform.python_version(),
        }
    ]
    # counters only grow
    for _ in range(20):
        http.get("/users")
    again = scrape(http)
    for name in ("process_cpu_seconds_total", "python_gc_collections_total"):
        assert value(again, name) >= value(samples, name), name


def test_no_series_carries_a_label_prometheus_sets(http: httpx.Client) -> None:
    samples = scrape(http)
    assert all(not TARGET_LABELS & set(labels) for _, labels, _ in samples)
    assert value(samples, "statebridge_info") == 1


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("# TYPE a gauge\na 1\n", "no HELP"),
        ("# HELP a A.\na 1\n", "no TYPE"),
        ("# HELP a A.\n# TYPE a gauge\na 1\na 2\n", "a series twice"),
        ("# HELP a A.\n# TYPE a gauge\na 1\n# HELP a A.\n", "after samples"),
        ("# HELP a_count A.\n# TYPE a_count counter\na_count 1\n", "_total"),
        ("# HELP a_ms A.\n# TYPE a_ms gauge\na_ms 1\n", "_seconds or _bytes"),
        ('# HELP a A.\n# TYPE a gauge\na{instance="x"} 1\n', "sets that label"),
        ('# HELP a A.\n# TYPE a gauge\na{b="x",b="y"} 1\n', "a label twice"),
        ('# HELP a A.\n# TYPE a gauge\na{b="x" } 1\n', "malformed labels"),
        ("# HELP a A.\n# TYPE a gauge\na 1", "line feed"),
        (
            "# HELP a A.\n# TYPE a gauge\n# HELP b B.\n# TYPE b gauge\nb 1\na 1\n",
            "not a sample of",
        ),
        (
            "# HELP a A.\n# TYPE a gauge\na 1\n# HELP b B.\n# TYPE b gauge\nb 1\n# HELP a A.\n",
            "not together",
        ),
        (
            "# HELP h H.\n# TYPE h histogram\n"
            'h_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
            "not cumulative",
        ),
        (
            "# HELP h H.\n# TYPE h histogram\n"
            'h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 2\n',
            "not the count",
        ),
    ],
)
def test_the_format_check_is_strict(text: str, complaint: str) -> None:
    """The checker the scrapes above go through refuses what Prometheus would."""
    with pytest.raises(AssertionError, match=complaint):
        parse_metrics(text)


# -- request ids and the access log ---------------------------------------------------------------


@pytest.mark.parametrize("sent", ["abc-123", "A.b_C-9", "x" * 128])
def test_a_sane_request_id_is_kept(http: httpx.Client, sent: str) -> None:
    response = http.get("/health/live", headers={"X-Request-ID": sent})
    assert response.headers["x-request-id"] == sent


@pytest.mark.parametrize(
    "sent", ["x" * 129, "has space", "semi;colon", 'quote"', "ü", "", "a/b", "{json}"]
)
def test_an_insane_request_id_is_replaced(http: httpx.Client, sent: str) -> None:
    response = http.get("/health/live", headers={"X-Request-ID": sent.encode()})  # type: ignore[dict-item]
    returned = response.headers["x-request-id"]
    assert returned != sent
    assert REQUEST_ID.match(returned)


def test_every_answer_carries_a_fresh_request_id(http: httpx.Client) -> None:
    seen = set()
    for path in ("/health", "/nope", "/users/nobody"):
        response = http.get(path)
        assert REQUEST_ID.match(response.headers["x-request-id"])
        seen.add(response.headers["x-request-id"])
    response = http.post(
        "/calculate", content=b"{bad", headers={"Content-Type": "application/json"}
    )
    seen.add(response.headers["x-request-id"])
    assert len(seen) == 4


def test_one_json_access_line_per_request(http: httpx.Client, target: Server) -> None:
    created = http.post("/api/stateful/session", json={"userId": "user001"})
    session_id = created.headers["Session-ID"]
    marker = f"obs-{uuid.uuid4().hex}"
    response = http.get(
        "/api/stateful/cart", headers={"Session-ID": session_id, "X-Request-ID": marker}
    )
    instance = response.headers["x-instance-id"]
    http.get("/users/user002", headers={"X-Request-ID": marker + "-b"})
    lines = wait_for_lines(target, marker, 2)
    cart, user = sorted(lines, key=lambda line: line["requestId"])
    assert cart["method"] == "GET"
    assert cart["route"] == "/api/stateful/cart"
    assert cart["status"] == 200
    assert cart["session"] is True
    assert cart["instance"] == instance
    assert cart["durationMs"] >= 0
    assert user["route"] == "/users/{user_id}" and user["session"] is False
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", cart["ts"])
    # the session id itself is never written to the log
    assert session_id not in target.log()


def test_every_log_line_is_json(target: Server, http: httpx.Client) -> None:
    http.get("/health")
    lines = [line for line in target.log().splitlines() if line.strip()]
    assert lines
    for line in lines:
        entry = json.loads(line)
        assert {"ts", "level", "logger"} <= set(entry), entry


@pytest.mark.parametrize("http_server", ["granian", "uvicorn"])
def test_access_lines_gathered_at_a_stop_are_written(tmp_path: Path, http_server: str) -> None:
    """Lines wait a moment to share one write; a SIGTERM right after the answers must not
    lose them."""
    server = Server(env={"STATEBRIDGE_HTTP_SERVER": http_server}, data_dir=tmp_path).start()
    try:
        with httpx.Client(base_url=server.url) as client:
            for i in range(5):
                sent = {"X-Request-ID": f"last-words-{i}"}
                assert client.get("/users", headers=sent).status_code == 200
    finally:
        assert server.stop() in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM at the end
    ids = [line["requestId"] for line in access_lines(server)]
    assert [f"last-words-{i}" for i in range(5)] == [i for i in ids if i.startswith("last-")]


def test_the_access_log_can_be_switched_off(tmp_path: Path) -> None:
    server = Server(env={"STATEBRIDGE_ACCESS_LOG": "off"}, data_dir=tmp_path).start()
    try:
        for _ in range(3):
            assert httpx.get(f"{server.url}/health").status_code == 200
        assert "X-Request-ID".lower() in httpx.get(f"{server.url}/health").headers
    finally:
        server.stop()
    assert access_lines(server) == []


def event_lines(server: Server) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for line in server.log().splitlines()
        if line.startswith("{") and '"statebridge.access"' not in line
    ]


def test_events_logged_in_a_request_carry_its_id(
    services_env: dict[str, str], tmp_path: Path
) -> None:
    """Redis is down: the catalog cache tries to subscribe again (at most once a second) on
    a request that reads the catalog, and warns that it cannot. That warning is the request's:
    it carries the id the response's X-Request-ID header and the access line carry."""
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    env = {"DATABASE_URL": services_env["DATABASE_URL"], "REDIS_URL": dead_redis}
    server = Server(env=env, data_dir=tmp_path, args=["--migrate"]).start()
    try:
        answered: set[str] = set()
        deadline = time.monotonic() + 15
        warned: list[dict[str, Any]] = []
        while not warned and time.monotonic() < deadline:
            response = httpx.get(f"{server.url}/users", timeout=10)  # the server makes the id
            assert response.status_code == 200
            answered.add(response.headers["x-request-id"])
            time.sleep(0.2)
            warned = [
                line
                for line in event_lines(server)
                if line["level"] == "warning" and line.get("requestId") in answered
            ]
    finally:
        server.stop()
    assert warned, server.log()
    event = warned[0]
    assert event["logger"] == "statebridge.catalog"
    assert "cannot subscribe to Redis" in event["message"]
    access = [line for line in access_lines(server) if line["requestId"] == event["requestId"]]
    assert len(access) == 1 and access[0]["route"] == "/users"
    assert access[0]["instance"] == event["instance"]
    # what is logged outside any request carries no request id
    ready = [line for line in event_lines(server) if " ready: " in line["message"]]
    assert ready and "requestId" not in ready[0]
    assert all(
        "requestId" not in line for line in event_lines(server) if "stopped" in line["message"]
    )
