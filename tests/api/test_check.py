"""`statebridge check`: its templates against recorded Phase 1 answers, and the command
against real servers, including a server that breaks the contract on purpose."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.requests import Request
from starlette.responses import Response

from statebridge.ops.contract import table as c
from statebridge.ops.contract.shapes import problems
from tests.support.commands import statebridge
from tests.support.recordings import TRANSCRIPT
from tests.support.servers import Server, free_port

# (server, method, path) of the recorded walk -> the template of its success `data`
RECORDED_DATA: dict[tuple[str, str, str], Any] = {
    ("sl", "GET", "/health"): c.STATELESS_HEALTH,
    ("sl", "GET", "/info"): c.STATELESS_INFO,
    ("sl", "POST", "/calculate"): c.CALCULATION,
    ("sl", "GET", "/random"): c.RANDOM,
    ("sl", "GET", "/users"): c.USERS,
    ("sl", "GET", "/users/user001"): c.USER_FOUND,
    ("sl", "GET", "/products"): c.PRODUCTS,
    ("sl", "GET", "/demonstrate/stateless"): c.STATELESS_DEMONSTRATION,
    ("sl", "GET", "/compare/stateful"): c.COMPARISON,
    ("sf", "GET", "/health"): c.STATEFUL_HEALTH,
    ("sf", "GET", "/info"): c.STATEFUL_INFO,
    ("sf", "POST", "/session"): c.SESSION_CREATED,
    ("sf", "GET", "/session"): c.SESSION,
    ("sf", "PUT", "/session"): c.SESSION_UPDATED,
    ("sf", "DELETE", "/session"): c.SESSION_DELETED,
    ("sf", "GET", "/cart"): c.CART_RETRIEVED,
    ("sf", "POST", "/cart/add"): c.CART_ADDED,
    ("sf", "DELETE", "/cart/remove/prod002"): c.CART_REMOVED,
    ("sf", "DELETE", "/cart"): c.CART_CLEARED,
    ("sf", "GET", "/profile"): c.PROFILE,
    ("sf", "PUT", "/profile/preferences"): c.PREFERENCES_UPDATED,
    ("sf", "GET", "/demonstrate/stateful"): c.STATEFUL_DEMONSTRATION,
    ("sf", "POST", "/workflow/start"): c.WORKFLOW_STARTED,
}


def recorded() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(TRANSCRIPT.read_text())
    return entries


def template_for(entry: dict[str, Any]) -> Any:
    message = entry["response"]["message"]
    if entry["status"] >= 400:
        return c.failure(message)
    key = (entry["server"], entry["method"], entry["path"].split("?")[0])
    if key == ("sf", "POST", "/workflow/next"):
        done = message == "Workflow completed"
        return c.success(message, c.WORKFLOW_COMPLETED if done else c.WORKFLOW_ADVANCED)
    return c.success(message, RECORDED_DATA[key])


def test_templates_accept_every_recorded_phase1_answer() -> None:
    """The check must pass real Phase 1 answers on every non-P2 row: its templates are
    held against all 54 recorded responses."""
    entries = recorded()
    assert len(entries) == 54
    for entry in entries:
        found = problems(template_for(entry), entry["response"], "body")
        assert found == [], f"{entry['method']} {entry['path']}: {found}"


def test_templates_reject_what_breaks_the_contract() -> None:
    health = next(e["response"] for e in recorded() if e["path"] == "/health")
    template = c.success("Stateless server is healthy", c.STATELESS_HEALTH)
    assert problems(template, health) == []

    missing = json.loads(json.dumps(health))
    del missing["data"]["requestCount"]
    assert problems(template, missing) == ["$.data.requestCount: missing"]

    as_text = json.loads(json.dumps(health))
    as_text["data"]["uptime"] = "2.1"
    assert problems(template, as_text) == ["$.data.uptime: expected number, got string '2.1'"]

    renamed = json.loads(json.dumps(health))
    renamed["data"]["type"] = renamed["data"].pop("serverType")
    assert problems(template, renamed) == ["$.data.serverType: missing"]

    wrong_message = {**health, "message": "OK"}
    assert len(problems(template, wrong_message)) == 1


# ---- the command against real servers -------------------------------------------------


def run_check(*args: str) -> subprocess.CompletedProcess[str]:
    return statebridge({"COLUMNS": "200"}, "check", *args)


def rows_of(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(result.stdout)["rows"]
    return rows


def test_statebridge_passes_every_row(server: Server) -> None:
    result = run_check(server.url, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = rows_of(result)
    assert len(rows) > 70
    assert [row for row in rows if not row["passed"]] == []
    assert {row["side"] for row in rows} == {"stateless", "stateful"}
    assert sum(row["p2"] for row in rows) >= 15


def test_separate_ports_like_phase1(server: Server) -> None:
    result = run_check(
        "--stateless-url", server.stateless_url, "--stateful-url", server.stateful_url
    )
    assert result.returncode == 0, result.stdout
    assert "Phase 1 contract check" in result.stdout
    assert "FAIL" not in result.stdout
    assert " 0 failed" in result.stdout


def test_the_check_leaves_user001_as_it_found_it(server: Server) -> None:
    before = httpx.get(f"{server.url}/users/user001").json()["data"]["user"]["preferences"]
    assert run_check(server.url, "--json").returncode == 0
    after = httpx.get(f"{server.url}/users/user001").json()["data"]["user"]["preferences"]
    assert after == before


def test_nothing_listening_is_a_clear_error() -> None:
    result = run_check(f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert "no stateless server answers" in result.stdout


def test_a_stateful_url_that_is_not_stateful_is_refused(server: Server) -> None:
    result = run_check(server.stateless_url)
    assert result.returncode == 2
    assert "--stateful-url" in result.stdout


# ---- a server that breaks the contract: a real proxy in front of statebridge ----------


Corrupt = Callable[[str, str, dict[str, str], Any], tuple[Any, dict[str, str]]]


class CorruptingProxy:
    """Forwards every request to statebridge and lets `corrupt` change the answer."""

    def __init__(self, upstream: str, corrupt: Corrupt) -> None:
        self.upstream = upstream
        self.corrupt = corrupt
        self.port = free_port()
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", interface="asgi3"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def app(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with httpx.AsyncClient() as http:
            answer = await http.request(
                request.method,
                self.upstream + request.url.path,
                params=request.url.query,
                content=body,
                headers=headers,
            )
        try:
            document: Any = answer.json()
        except ValueError:
            document = None
        kept = {
            k: v
            for k, v in answer.headers.items()
            if k.lower() not in ("content-length", "content-encoding", "transfer-encoding")
        }
        document, kept = self.corrupt(request.method, request.url.path, kept, document)
        content = answer.content if document is None else json.dumps(document).encode()
        response = Response(content, status_code=answer.status_code, headers=kept)
        await response(scope, receive, send)

    def __enter__(self) -> CorruptingProxy:
        self.thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("proxy did not start")

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def breaks_the_contract(
    method: str, path: str, headers: dict[str, str], document: Any
) -> tuple[Any, dict[str, str]]:
    """A Phase 2 that got two things wrong: a key dropped, and money as a string."""
    if path == "/health" and document and document["data"].get("serverType") == "stateless":
        del document["data"]["requestCount"]
    if path == "/cart/add" and document and document["status"] == "success":
        document["data"]["cart"]["total"] = str(document["data"]["cart"]["total"])
    return document, headers


def breaks_only_a_p2_row(
    method: str, path: str, headers: dict[str, str], document: Any
) -> tuple[Any, dict[str, str]]:
    """Phase 1's behaviour on one P2 row: browsers cannot read Session-ID."""
    kept = {k: v for k, v in headers.items() if k.lower() != "access-control-expose-headers"}
    return document, kept


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(env={}, data_dir=tmp_path_factory.mktemp("check-upstream")).start()
    yield running
    running.stop()


def test_a_broken_server_fails_with_the_right_rows(upstream: Server) -> None:
    with (
        CorruptingProxy(upstream.stateless_url, breaks_the_contract) as stateless,
        CorruptingProxy(upstream.stateful_url, breaks_the_contract) as stateful,
    ):
        result = run_check("--stateless-url", stateless.url, "--stateful-url", stateful.url)
        as_json = run_check(
            "--stateless-url", stateless.url, "--stateful-url", stateful.url, "--json"
        )
    assert result.returncode == 1, result.stdout
    assert "FAIL" in result.stdout
    assert "$.data.requestCount: missing" not in result.stdout  # problems name the body
    assert "body.data.requestCount: missing" in result.stdout
    failed = [row for row in rows_of(as_json) if not row["passed"]]
    titles = {(row["side"], row["title"]) for row in failed}
    assert ("stateless", "health") in titles
    assert ("stateful", "add to cart") in titles
    assert all(not row["p2"] for row in failed)
    assert any("expected number, got string" in p for row in failed for p in row["problems"])
    assert as_json.returncode == 1


def test_p2_failures_are_reported_as_such(upstream: Server) -> None:
    with CorruptingProxy(upstream.stateful_url, breaks_only_a_p2_row) as stateful:
        strict = run_check(
            "--stateless-url", upstream.stateless_url, "--stateful-url", stateful.url
        )
        lenient = run_check(
            "--stateless-url", upstream.stateless_url, "--stateful-url", stateful.url,
            "--ignore-p2", "--json",
        )  # fmt: skip
    assert strict.returncode == 1
    assert "FAIL (P2)" in strict.stdout
    assert "1 failed (1 of them P2 rows" in strict.stdout
    assert lenient.returncode == 0
    failed = [row for row in rows_of(lenient) if not row["passed"]]
    assert [(row["title"], row["p2"]) for row in failed] == [("CORS exposes Session-ID", True)]


# ---- the real Phase 1, when a checkout of it is at hand --------------------------------


@pytest.fixture(scope="module")
def phase1() -> Iterator[tuple[str, str]]:
    """Phase 1 running from PHASE1_DIR (its own ports 3001/3002); skipped without it."""
    directory = os.environ.get("PHASE1_DIR")
    node = shutil.which("node")
    if not directory or not node or not (Path(directory) / "node_modules").is_dir():
        pytest.skip("set PHASE1_DIR to a Phase 1 checkout with node_modules to check it")
    urls = ("http://127.0.0.1:3001", "http://127.0.0.1:3002")
    process = None
    if not all(_answers(url) for url in urls):
        process = subprocess.Popen(
            [node, "server.js"], cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while not all(_answers(url) for url in urls):
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("Phase 1 did not start")
            time.sleep(0.2)
    yield urls
    if process is not None:
        process.terminate()
        process.wait(10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.phase1
def test_phase1_fails_only_p2_rows(phase1: tuple[str, str]) -> None:
    stateless, stateful = phase1
    result = run_check("--stateless-url", stateless, "--stateful-url", stateful, "--json")
    assert result.returncode == 1
    failed = [row for row in rows_of(result) if not row["passed"]]
    assert failed, "Phase 1 should fail the P2 rows"
    assert [row["title"] for row in failed if not row["p2"]] == []
    lenient = run_check("--stateless-url", stateless, "--stateful-url", stateful, "--ignore-p2")
    assert lenient.returncode == 0, lenient.stdout
