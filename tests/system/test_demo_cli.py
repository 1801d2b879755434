"""`statebridge demo`: Phase 1's three demo scripts, replayed to the end against statebridge."""

from __future__ import annotations

import re
import subprocess

import httpx

from tests.support.commands import statebridge
from tests.support.servers import Server, free_port


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return statebridge({"COLUMNS": "160"}, "demo", *args)


def sessions_used(out: str) -> set[str]:
    return set(re.findall(r"Session-ID: ([0-9a-f-]{36})", out))


def assert_all_ended(server: Server, out: str) -> None:
    """Every session the demo used is gone from the server: the demo cleaned up."""
    used = sessions_used(out)
    assert used
    for session_id in used:
        answer = httpx.get(f"{server.stateful_url}/session", headers={"Session-ID": session_id})
        assert answer.status_code == 401, session_id


def preferences(server: Server) -> dict[str, object]:
    user = httpx.get(f"{server.url}/users/user001").json()["data"]["user"]
    prefs: dict[str, object] = user["preferences"]
    return prefs


def test_stateless_demo(server: Server) -> None:
    result = run_demo("stateless", "--url", server.url)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"{server.url}/api/stateless" in out
    for request in ("GET /health", "GET /info", "POST /calculate", "GET /users/user001",
                    "GET /products?category=electronics", "GET /random?count=2&type=string",
                    "GET /demonstrate/stateless", "GET /compare/stateful"):  # fmt: skip
        assert f"→ {request}" in out, request
    assert "✅ Error handling works correctly (400 Unsupported operation: invalid)" in out
    assert "Stateless client demonstration completed successfully!" in out
    assert "Each request is independent" in out  # the takeaways
    assert '"requestCount"' in out  # response bodies are printed


def test_stateful_demo_cleans_up_after_itself(server: Server) -> None:
    prefs = preferences(server)
    result = run_demo("stateful", "--url", server.url)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"{server.url}/api/stateful" in out
    assert "Session-ID: " in out
    assert "visitCount 1 → 2 → 3" in out
    assert "← 200 Workflow completed" in out
    assert "Stateful client demonstration completed successfully!" in out
    assert "Client must include Session-ID in subsequent requests" in out
    assert_all_ended(server, out)
    assert preferences(server) == prefs


def test_compare_demo_runs_to_the_end(server: Server) -> None:
    """Phase 1's own comparison stops at its first calculation; this one finishes."""
    result = run_demo("compare", "--url", server.url, "--brief")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "[stateless] POST /calculate" in out
    assert "History kept in the session: 3 calculation(s) so far" in out
    assert "Visit 3: Count = 3" in out
    assert "What each server remembered in this run" in out
    assert "✅ Stateful session cleaned up" in out
    assert "Comprehensive comparison completed successfully!" in out
    assert '"heapTotal"' not in out  # --brief: status lines, no response bodies
    assert_all_ended(server, out)


def test_phase1_style_separate_urls(server: Server) -> None:
    result = run_demo(
        "compare", "--brief",
        "--stateless-url", server.stateless_url, "--stateful-url", server.stateful_url,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Comparing {server.stateless_url} (stateless) with {server.stateful_url}" in (
        result.stdout.replace("\n", " ")
    )
    single = run_demo("stateful", "--url", server.stateful_url, "--brief")
    assert single.returncode == 0, single.stdout


def test_a_url_without_that_server_is_explained(server: Server) -> None:
    result = run_demo("stateful", "--url", server.stateless_url)
    assert result.returncode == 2
    assert "no stateful server answers" in result.stdout
    assert "--stateful-url" in result.stdout


def test_a_dead_server_fails_cleanly() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_demo("stateless", "--stateless-url", url)
    assert result.returncode == 1
    assert "Demo failed" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
