"""Probes, metrics, request ids and the JSON access log, read from real servers."""

from __future__ import annotations

import json
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
from tests.support.private_services import own_server
from tests.support.servers import Server, free_port

SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

Samples = list[tuple[str, dict[str, str], float]]


def parse_metrics(text: str) -> Samples:
    """The Prometheus text format, strictly: every line a comment or a well-formed sample."""
    samples: Samples = []
    declared: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram"), line
            declared.add(name)
            continue
        if line.startswith("# HELP ") or not line:
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        labels = dict(LABEL.findall(match["labels"] or ""))
        name = match["name"]
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in declared or family in declared, f"undeclared metric {name}"
        samples.append((name, labels, float(match["value"])))
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        number
        for sample, found, number in samples
        if sample == name and all(found.get(key) == wanted for key, wanted in labels.items())
    )


def scrape(client: httpx.Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse_metrics(response.text)


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


def test_probes_answer_on_every_face(target: Server) -> None:
    for base in (target.url, target.stateless_url, target.stateful_url):
        assert_envelope(httpx.get(f"{base}/health/live"), 200)
        assert_envelope(httpx.get(f"{base}/health/ready"), 200)
    # and Phase 1's /health is still there, unchanged
    body = assert_envelope(httpx.get(f"{target.url}/health"), 200)
    assert body["message"] == "Stateless server is healthy"


def test_ready_is_503_per_component_when_redis_is_down(
    services_env: dict[str, str], tmp_path: Path
) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    env = {"DATABASE_URL": services_env["DATABASE_URL"], "REDIS_URL": dead_redis}
    server = Server(env=env, data_dir=tmp_path, args=["--migrate"]).start()
    try:
        response = httpx.get(f"{server.url}/health/ready", timeout=30)
        body = assert_envelope(response, 503)
        assert body["message"] == "Service not ready"
        assert body["errors"] == [{"field": "redis", "message": "redis is down (ConnectionError)"}]
        components = body["data"]["components"]
        assert components["redis"] == {"status": "down", "error": "ConnectionError"}
        assert components["database"]["status"] == "up"
        # liveness does not depend on Redis
        assert_envelope(httpx.get(f"{server.url}/health/live"), 200)
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
            "instance": http.get("/health/live").headers["x-instance-id"],
            "version": info[0]["version"],
        }
    ]
    if "REDIS_URL" in target.env:  # the session cache answered those lookups
        assert (
            value(samples, "statebridge_cache_requests_total", cache="sessions", result="hit") >= 2
        )


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
