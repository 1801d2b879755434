"""A real nginx, rendered from the shipped template, in front of two statebridge instances on
PostgreSQL and Redis, everything on loopback: TLS, redirects, headers, the rate limit, shared
sessions across instances, the Phase 1 ports, and losing an instance mid-run."""

from __future__ import annotations

import json
import re
import signal
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from statebridge.asgi.headers import SECURITY_HEADERS
from tests.support.nginx import NGINX, NO_LIMIT, Proxy, new_certs, proxy_to
from tests.support.servers import Server

pytestmark = pytest.mark.nginx

if NGINX is None:
    pytest.skip(
        "nginx is not installed (scripts/ci-install-nginx.sh installs it)", allow_module_level=True
    )

JS_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
# The app's security headers (helmet's), which nginx sends as the app does; Strict-Transport-
# Security is nginx's own (HTTPS only, the profile's max-age)
GUIDE_HEADERS = {
    name.decode(): value.decode()
    for name, value in SECURITY_HEADERS
    if name != b"strict-transport-security"
}


def start_pair(env: dict[str, str], base: Path) -> list[Server]:
    """Two instances on one database; the first migrates it, then the second starts."""
    first = Server(env=env, data_dir=base / "a", args=["--migrate"]).start()
    try:
        second = Server(env=env, data_dir=base / "b").start()
    except BaseException:
        first.stop()
        raise
    return [first, second]


def instance_id(server: Server) -> str:
    return httpx.get(f"{server.url}/health", timeout=10).headers["x-instance-id"]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return new_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def instances(
    services_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Server]]:
    servers = start_pair(services_env, tmp_path_factory.mktemp("instances"))
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def proxy(
    instances: list[Server], certs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    """nginx with a limit far above what these tests send, so it never interferes."""
    ports = [server.port for server in instances]
    with proxy_to(ports, tmp_path_factory.mktemp("nginx"), certs) as running:
        yield running


@pytest.fixture()
def limited(instances: list[Server], certs: Path, tmp_path: Path) -> Iterator[Proxy]:
    """nginx with the shipped limit (10 r/s, burst 20), fresh for each test."""
    running = Proxy(
        prefix=tmp_path / "nginx",
        upstreams=[f"127.0.0.1:{server.port}" for server in instances],
        certs=certs,
    ).start()
    yield running
    running.stop()


@pytest.fixture()
def client() -> Iterator[httpx.Client]:
    with httpx.Client(verify=False, timeout=30) as session:
        yield session


def assert_envelope(response: httpx.Response, status: str) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert isinstance(body["message"], str)
    assert JS_TIMESTAMP.match(body["timestamp"]), body["timestamp"]
    if status == "error":
        assert isinstance(body["errors"], list)
    return body


def assert_guide_headers(response: httpx.Response) -> None:
    for name, value in GUIDE_HEADERS.items():
        assert response.headers.get_list(name) == [value], name


# --- TLS, redirects, headers -------------------------------------------------------------


def test_https_answers_with_the_phase1_envelope(proxy: Proxy, client: httpx.Client) -> None:
    response = client.get(f"{proxy.https_url}/health")
    assert response.status_code == 200
    assert assert_envelope(response, "success")["message"] == "Stateless server is healthy"
    assert response.headers["server"] == "nginx"  # server_tokens off: no version

    stateful = client.get(f"{proxy.https_url}/api/stateful/health")
    assert assert_envelope(stateful, "success")["message"] == "Stateful server is healthy"

    missing = client.get(f"{proxy.https_url}/no/such/endpoint")
    assert missing.status_code == 404
    assert assert_envelope(missing, "error")["message"] == "Endpoint not found"


def test_plain_http_redirects_to_https(proxy: Proxy, client: httpx.Client) -> None:
    response = client.get(f"{proxy.http_url}/info?client=1")
    assert response.status_code == 301
    assert response.headers["location"] == f"{proxy.https_url}/info?client=1"
    followed = client.get(response.headers["location"])
    assert assert_envelope(followed, "success")["message"] == "Stateless server information"

    wrong_scheme = client.get(f"http://127.0.0.1:{proxy.https_port}/health")
    assert wrong_scheme.status_code == 301
    assert wrong_scheme.headers["location"] == f"{proxy.https_url}/health"


def tls_version(port: int, context: ssl.SSLContext) -> str | None:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return tls.version()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls_is_1_2_or_1_3_with_the_generated_certificate(proxy: Proxy, certs: Path) -> None:
    for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
        context = ssl.create_default_context(cafile=str(certs / "cert.pem"))
        context.minimum_version = context.maximum_version = version
        assert tls_version(proxy.https_port, context) == name
    if ssl.HAS_TLSv1_1:
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.check_hostname = False
        old.verify_mode = ssl.CERT_NONE
        old.set_ciphers("DEFAULT:@SECLEVEL=0")
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises(ssl.SSLError):
            tls_version(proxy.https_port, old)


def test_security_headers_on_every_answer(proxy: Proxy, client: httpx.Client) -> None:
    answers = [
        client.get(f"{proxy.https_url}/health"),
        client.get(f"{proxy.https_url}/no/such/endpoint"),
        client.post(f"{proxy.https_url}/calculate", content=b"{", headers=JSON_HEADERS),
    ]
    assert [answer.status_code for answer in answers] == [200, 404, 400]
    for answer in answers:
        assert_guide_headers(answer)
        (hsts,) = answer.headers.get_list("strict-transport-security")
        assert re.match(r"^max-age=[1-9]\d*; includeSubDomains$", hsts)
    legacy = client.get(f"{proxy.stateless_url}/health")
    assert_guide_headers(legacy)
    assert "strict-transport-security" not in legacy.headers  # meaningless over plain HTTP


def security_headers(response: httpx.Response) -> dict[str, list[str]]:
    return {name: response.headers.get_list(name) for name in GUIDE_HEADERS}


@pytest.mark.parametrize("path", ["/health", "/no/such/endpoint", "/docs"])
def test_nginx_sends_the_security_headers_the_app_sends(
    path: str, instances: list[Server], proxy: Proxy, client: httpx.Client
) -> None:
    direct = client.get(f"{instances[0].url}{path}")
    through = client.get(f"{proxy.https_url}{path}")
    assert direct.status_code == through.status_code
    assert security_headers(through) == security_headers(direct)
    assert direct.headers["x-xss-protection"] == "0"  # the modern advice, as helmet sends it


def test_answers_nginx_makes_itself_carry_the_apps_security_headers(
    instances: list[Server], proxy: Proxy, client: httpx.Client
) -> None:
    direct = client.get(f"{instances[0].url}/no/such/endpoint")
    made = client.get(f"{proxy.https_url}/metrics")  # nginx's own 404 (/metrics is private)
    assert made.status_code == direct.status_code == 404
    assert security_headers(made) == security_headers(direct)


def access_log_line(proxy: Proxy, request_id: str) -> str:
    for _ in range(50):  # nginx writes the line once the answer is sent
        lines = (proxy.prefix / "logs" / "access.log").read_text().splitlines()
        found = [line for line in lines if line.endswith(f" rid={request_id}")]
        if found:
            (line,) = found
            return line
        time.sleep(0.1)
    raise AssertionError(f"rid={request_id} is not in nginx's access log")


def app_log_entries(instances: list[Server], request_id: str) -> list[dict[str, Any]]:
    entries = []
    for _ in range(50):
        for server in instances:
            for line in server.log().splitlines():
                if request_id in line and line.startswith("{"):
                    entries.append(json.loads(line))
        if entries:
            return entries
        time.sleep(0.1)
    return entries


def test_one_request_id_follows_a_request_through_nginx(
    instances: list[Server], proxy: Proxy, client: httpx.Client
) -> None:
    """No id from the client: nginx's $request_id goes upstream, and nginx's access log, the
    answer and the app's access log all carry it."""
    response = client.get(f"{proxy.https_url}/info?trace=nginx-id")
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id), request_id  # nginx's, not the app's 24
    assert '"GET /info?trace=nginx-id HTTP/' in access_log_line(proxy, request_id)
    logged = app_log_entries(instances, request_id)
    assert [entry["requestId"] for entry in logged] == [request_id], logged


@pytest.mark.parametrize(
    ("sent", "kept"), [("client-id.42_a", True), ("x" * 129, False), ("bad id!", False)]
)
def test_a_client_request_id_is_kept_by_the_apps_rule(
    sent: str, kept: bool, instances: list[Server], proxy: Proxy, client: httpx.Client
) -> None:
    response = client.get(f"{proxy.https_url}/info", headers={"X-Request-ID": sent})
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    assert (request_id == sent) is kept
    access_log_line(proxy, request_id)
    assert [entry["requestId"] for entry in app_log_entries(instances, request_id)] == [request_id]


JSON_HEADERS = {"Content-Type": "application/json"}


def test_body_over_1mb_is_413_in_the_envelope(proxy: Proxy, client: httpx.Client) -> None:
    body = b'{"operation":"add","values":[1],"pad":"' + b"x" * (1024 * 1024) + b'"}'
    response = client.post(f"{proxy.https_url}/calculate", content=body, headers=JSON_HEADERS)
    assert response.status_code == 413
    assert assert_envelope(response, "error")["message"] == "Request body too large"
    assert_guide_headers(response)


# --- forwarded headers ---------------------------------------------------------------------


class EchoHandler(BaseHTTPRequestHandler):
    """Answers with the path and headers it received: what nginx really forwards."""

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "headers": dict(self.headers.items())}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture()
def echo_proxy(certs: Path, tmp_path: Path) -> Iterator[Proxy]:
    echo = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=echo.serve_forever, daemon=True)
    thread.start()
    running = Proxy(
        prefix=tmp_path / "nginx",
        upstreams=[f"127.0.0.1:{echo.server_address[1]}"],
        certs=certs,
        limits=NO_LIMIT,
    )
    try:
        yield running.start()
    finally:
        running.stop()
        echo.shutdown()
        echo.server_close()


def test_nginx_forwards_client_address_scheme_and_host(
    echo_proxy: Proxy, client: httpx.Client
) -> None:
    spoofed = {"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"}
    seen = client.get(f"{echo_proxy.https_url}/info?x=1", headers=spoofed).json()
    headers = {name.lower(): value for name, value in seen["headers"].items()}
    assert seen["path"] == "/info?x=1"
    assert headers["x-real-ip"] == "127.0.0.1"
    assert headers["x-forwarded-for"] == "127.0.0.1"  # the client's claim is replaced
    assert headers["x-forwarded-proto"] == "https"
    assert headers["host"] == f"127.0.0.1:{echo_proxy.https_port}"

    legacy = client.get(f"{echo_proxy.stateful_url}/cart?x=1").json()
    assert legacy["path"] == "/api/stateful/cart?x=1"
    assert legacy["headers"]["X-Forwarded-Proto"] == "http"


def test_the_app_believes_its_proxy(
    proxy: Proxy, instances: list[Server], client: httpx.Client
) -> None:
    """Behind nginx the app logs the scheme the client used (X-Forwarded-Proto), not http."""
    marker = "believes-its-proxy"
    response = client.get(f"{proxy.https_url}/info", headers={"X-Request-ID": marker})
    assert response.status_code == 200
    lines = [
        json.loads(line)
        for server in instances
        for line in server.log().splitlines()
        if marker in line and '"statebridge.access"' in line
    ]
    assert len(lines) == 1
    assert lines[0]["scheme"] == "https"
    assert lines[0]["client"] == "127.0.0.1"


# --- scale-out: shared state behind round-robin ----------------------------------------------


def test_a_session_works_on_every_instance(
    proxy: Proxy, instances: list[Server], client: httpx.Client
) -> None:
    created = client.post(f"{proxy.https_url}/api/stateful/session", json={"userId": "user001"})
    assert created.status_code == 200
    sid = created.headers["session-id"]
    served_by: set[str] = {created.headers["x-instance-id"]}
    for step in range(8):
        headers = {"Session-ID": sid}
        added = client.post(
            f"{proxy.https_url}/api/stateful/cart/add",
            json={"productId": "prod001", "quantity": 1},
            headers=headers,
        )
        updated = client.put(
            f"{proxy.https_url}/api/stateful/session",
            json={"data": {"step": step}},
            headers=headers,
        )
        assert (added.status_code, updated.status_code) == (200, 200)
        served_by |= {added.headers["x-instance-id"], updated.headers["x-instance-id"]}
    assert served_by == {instance_id(server) for server in instances}  # both, round-robin

    cart = client.get(f"{proxy.https_url}/api/stateful/cart", headers={"Session-ID": sid})
    (item,) = assert_envelope(cart, "success")["data"]["cart"]["items"]
    assert (item["productId"], item["quantity"]) == ("prod001", 8)
    session = client.get(f"{proxy.https_url}/api/stateful/session", headers={"Session-ID": sid})
    assert session.json()["data"]["session"]["data"]["step"] == 7


def test_phase1_ports_answer_as_the_two_phase1_servers(proxy: Proxy, client: httpx.Client) -> None:
    stateless = client.get(f"{proxy.stateless_url}/health")
    assert assert_envelope(stateless, "success")["message"] == "Stateless server is healthy"
    stateful = client.get(f"{proxy.stateful_url}/health")
    assert assert_envelope(stateful, "success")["message"] == "Stateful server is healthy"

    info = client.get(f"{proxy.stateless_url}/info", headers={"Client-ID": "legacy"})
    assert info.json()["data"]["clientId"] == "legacy"
    created = client.post(f"{proxy.stateful_url}/session", json={"userId": "user002"})
    sid = created.headers["session-id"]
    added = client.post(
        f"{proxy.stateful_url}/cart/add",
        json={"productId": "prod003", "quantity": 2},
        headers={"Session-ID": sid},
    )
    assert assert_envelope(added, "success")["message"] == "Item added to cart"
    removed = client.delete(
        f"{proxy.stateful_url}/cart/remove/prod003", headers={"Session-ID": sid}
    )
    assert removed.json()["data"]["removedProductId"] == "prod003"
    missing = client.get(f"{proxy.stateful_url}/cart")
    assert missing.status_code == 401


# --- rate limit ------------------------------------------------------------------------------

RATE, BURST = 10, 20  # the shipped defaults


def drain() -> None:
    """Wait until the client's bucket is empty again (burst / rate seconds, with margin)."""
    time.sleep(BURST / RATE + 0.5)


def test_requests_within_the_limit_are_never_refused(limited: Proxy, client: httpx.Client) -> None:
    statuses = [client.get(f"{limited.https_url}/health").status_code for _ in range(BURST + 1)]
    drain()
    for _ in range(15):  # half the rate, steadily
        statuses.append(client.get(f"{limited.https_url}/health").status_code)
        time.sleep(2 / RATE)
    assert statuses == [200] * len(statuses)


def test_a_client_that_waits_for_answers_is_slowed_never_refused(
    limited: Proxy, client: httpx.Client
) -> None:
    """Phase 1's demo clients send request after request without pausing: past the quick
    part of the burst they are paced to the rate, but never get a 429."""
    count = 2 * BURST + 5  # a burst of this many at once gets 429s (the test below)
    statuses = [client.get(f"{limited.stateful_url}/health").status_code for _ in range(count)]
    assert statuses == [200] * count


def test_a_burst_over_the_limit_gets_429_in_the_envelope(limited: Proxy) -> None:
    with httpx.Client(verify=False, timeout=30, limits=httpx.Limits(max_connections=40)) as pool:
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=40) as executor:
            answers = list(
                executor.map(lambda _: pool.get(f"{limited.https_url}/health"), range(40))
            )
        elapsed = time.monotonic() - started
    ok = [answer for answer in answers if answer.status_code == 200]
    refused = [answer for answer in answers if answer.status_code == 429]
    assert len(ok) + len(refused) == 40
    assert len(ok) >= BURST + 1  # the allowed burst always passes
    assert len(ok) <= BURST + 1 + int(elapsed * RATE) + 1  # and little more than it
    assert refused
    for answer in refused:
        body = assert_envelope(answer, "error")
        assert (body["message"], body["errors"]) == ("Too many requests", [])
        assert_guide_headers(answer)
        assert "x-instance-id" not in answer.headers  # nginx answered, the app never saw it


# --- losing an instance ----------------------------------------------------------------------


@dataclass
class Loop:
    """A client loop in a thread, recording every outcome."""

    name: str
    outcomes: list[tuple[int, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, request: Any) -> threading.Thread:
        def body() -> None:
            with httpx.Client(verify=False, timeout=30) as session:
                for _ in range(5000):  # bounded, whatever happens
                    if self.stop.is_set():
                        return
                    try:
                        response = request(session)
                        self.outcomes.append(
                            (response.status_code, response.headers.get("x-instance-id", ""))
                        )
                    except httpx.HTTPError as exc:
                        self.outcomes.append((0, type(exc).__name__))

        thread = threading.Thread(target=body, name=self.name, daemon=True)
        thread.start()
        return thread


def wait_for(loop: Loop, count: int) -> None:
    for _ in range(6000):
        if len(loop.outcomes) >= count:
            return
        time.sleep(0.01)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_losing_an_instance_loses_no_acknowledged_request(
    sig: signal.Signals,
    services_env: dict[str, str],
    certs: Path,
    tmp_path: Path,
) -> None:
    pair = start_pair(services_env, tmp_path / "pair")
    running = Proxy(
        prefix=tmp_path / "nginx",
        upstreams=[f"127.0.0.1:{server.port}" for server in pair],
        certs=certs,
        limits=NO_LIMIT,
    )
    try:
        running.start()
        base = running.https_url
        with httpx.Client(verify=False, timeout=30) as setup:
            created = setup.post(f"{base}/api/stateful/session", json={"userId": "user002"})
        assert created.status_code == 200, created.text
        sid = created.headers["session-id"]
        headers = {"Session-ID": sid}
        victim, survivor, victim_id = pair[1], instance_id(pair[0]), instance_id(pair[1])

        adds, reads = Loop("adds"), Loop("reads")
        add_thread = adds.run(
            lambda s: s.post(
                f"{base}/api/stateful/cart/add",
                json={"productId": "prod002", "quantity": 1},
                headers=headers,
            )
        )
        read_thread = reads.run(lambda s: s.get(f"{base}/api/stateful/cart", headers=headers))
        wait_for(adds, 40)
        before = len(adds.outcomes)
        victim.stop(sig)
        assert victim.process is not None and victim.process.poll() is not None
        wait_for(adds, before + 60)
        wait_for(reads, len(reads.outcomes) + 20)
        for loop in (adds, reads):
            loop.stop.set()
        add_thread.join(60)
        read_thread.join(60)

        with httpx.Client(verify=False, timeout=30) as check:
            cart = check.get(f"{base}/api/stateful/cart", headers=headers)
        assert cart.status_code == 200
        items = cart.json()["data"]["cart"]["items"]
        final = sum(item["quantity"] for item in items if item["productId"] == "prod002")
    finally:
        running.stop()
        for server in pair:
            server.stop()

    acknowledged = sum(1 for status, _ in adds.outcomes if status == 200)
    unknown = len(adds.outcomes) - acknowledged
    assert {instance for status, instance in adds.outcomes[:before] if status == 200} == {
        survivor,
        victim_id,
    }
    assert any(inst == survivor for status, inst in adds.outcomes[before:] if status == 200)
    # every GET was answered: nginx retried the idempotent ones on the survivor
    assert [status for status, _ in reads.outcomes] == [200] * len(reads.outcomes)
    # every acknowledged add is in the cart; only unanswered ones may or may not be
    assert acknowledged <= final <= acknowledged + unknown
    if sig == signal.SIGTERM:  # a graceful stop finishes what it started: nothing in doubt
        assert final == acknowledged


# Every spelling a client might try for the metrics, and whether the app itself (asked
# directly, as Prometheus does) answers it: only the exact path, with or without a query.
METRICS_SPELLINGS = {
    "/metrics": True,
    "/metrics?x=1": True,
    "/metrics/": False,
    "/metrics//": False,
    "//metrics": False,
    "/%6detrics": False,
    "/%6D%65trics": False,
    "/metrics%2F": False,
    "/metrics%2f%2f": False,
    "/METRICS": False,
    "/Metrics/": False,
    "/./metrics": False,
    "/%2e/metrics": False,
    "/x/../metrics": False,
    "/metrics/?x=1": False,
    "/api/stateless/metrics": False,
    "/api/stateful/metrics": False,
}


def raw_get(port: int, target: str, tls: bool = False) -> tuple[int, dict[str, str], str]:
    """GET `target` exactly as written (no client-side normalisation of the path)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as plain:
        sock: socket.socket = plain
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            sock = context.wrap_socket(plain, server_hostname="localhost")
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body.decode("utf-8", "replace")


def is_metrics_text(body: str) -> bool:
    return "# TYPE statebridge_" in body or "statebridge_http_requests_total" in body


@pytest.mark.parametrize("spelling", list(METRICS_SPELLINGS))
def test_metrics_are_not_served_through_the_proxy_in_any_spelling(
    proxy: Proxy, instances: list[Server], spelling: str
) -> None:
    """Prometheus scrapes the instances directly; through the proxy every spelling of the
    path (slashes, percent-encoding, case, dot segments, a query) is answered 404 by nginx
    itself (no request id: the app never saw it) on every listener."""
    listeners = [
        (proxy.https_port, True),
        (proxy.stateless_port, False),
        (proxy.stateful_port, False),
    ]
    for port, tls in listeners:
        status, headers, body = raw_get(port, spelling, tls)
        assert status in (403, 404), (port, spelling, status, body[:200])
        assert not is_metrics_text(body), (port, spelling)
        if not spelling.startswith("/api/"):  # those the app answers 404 itself
            assert "x-request-id" not in headers, (port, spelling, "nginx passed it on")
            assert json.loads(body)["message"] == "Endpoint not found"
    status, _, body = raw_get(instances[0].port, spelling)
    if METRICS_SPELLINGS[spelling]:
        assert status == 200, (spelling, body[:200])
        assert is_metrics_text(body)
    else:  # the app answers the exact path only: another spelling is not a way around nginx
        assert status == 404, (spelling, status, body[:200])
        assert not is_metrics_text(body)
