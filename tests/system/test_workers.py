"""`statebridge serve --workers N`: forked workers that each issue their own request ids,
and a server that starts a worker again when one dies, until it is told to stop."""

from __future__ import annotations

import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.servers import Server
from tests.support.waiting import wait_until

HTTP_SERVERS = ["granian", "uvicorn"]


def children(pid: int) -> set[int]:
    """The processes whose parent is `pid` (from /proc/*/stat, zombies left out)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, parent = stat.rsplit(")", 1)[1].split()[:2]
        if int(parent) == pid and state != "Z":
            found.add(int(entry))
    return found


def replaced(parent: int, known: frozenset[int]) -> set[int]:
    """The workers of `parent`, once there are two again and one of them is new."""
    found = children(parent)
    return found if len(found) == 2 and found - known else set()


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def fresh_gets(url: str, count: int) -> list[httpx.Response]:
    """`count` GETs, each on a new connection, several at a time: every worker gets some."""

    def one(_: int) -> httpx.Response:
        return httpx.get(url, timeout=10)

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def worker_of(response: httpx.Response) -> int:
    """The answering worker's pid: the default instance id is host-pid-random."""
    return int(response.headers["x-instance-id"].rsplit("-", 2)[1])


def answers_from(url: str, workers: int, rounds: int = 25) -> list[httpx.Response]:
    """Answers over fresh connections until `workers` different workers have answered."""
    answers: list[httpx.Response] = []
    for _ in range(rounds):
        answers += fresh_gets(url, 40)
        if len({worker_of(answer) for answer in answers}) >= workers:
            break
    return answers


def restarts(url: str) -> int:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    (line,) = [row for row in text.splitlines() if row.startswith("statebridge_worker_restarts")]
    return int(line.split()[1])


def log_lines(server: Server) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]


# -- request ids -----------------------------------------------------------------------------


def test_request_ids_are_unique_across_workers_and_instances(tmp_path: Path) -> None:
    servers = [Server(env={}, data_dir=tmp_path / name, args=["--workers", "2"]) for name in "ab"]
    try:
        for server in servers:
            server.start()
        answers: list[httpx.Response] = []
        for server in servers:
            assert server.process is not None
            mine = answers_from(f"{server.url}/health/live", 2)
            workers = {worker_of(answer) for answer in mine}
            assert workers == children(server.process.pid), "not every worker answered"
            answers += mine
    finally:
        for server in servers:
            server.stop()
    ids = [answer.headers["x-request-id"] for answer in answers]
    assert all(answer.status_code == 200 for answer in answers)
    repeated = {value for value in ids if ids.count(value) > 1}
    assert not repeated, f"{len(repeated)} request ids issued more than once, e.g. {repeated.pop()}"
    # the counterpart in the access log: one line per answer, each id once
    logged = [
        line["requestId"]
        for server in servers
        for line in log_lines(server)
        if line.get("logger") == "statebridge.access" and line["route"] == "/health/live"
    ]
    assert sorted(logged) == sorted(ids)


# -- a worker that dies is started again -------------------------------------------------------


@pytest.mark.parametrize("http_server", HTTP_SERVERS)
def test_a_killed_worker_is_started_again_and_sigterm_still_stops_all(
    tmp_path: Path, http_server: str
) -> None:
    env = {"STATEBRIDGE_HTTP_SERVER": http_server}
    server = Server(env=env, data_dir=tmp_path, args=["--workers", "2"]).start()
    assert server.process is not None
    parent = server.process.pid
    urls = [server.url, server.stateless_url, server.stateful_url]
    try:
        first = wait_until(lambda: len(children(parent)) == 2 and children(parent), "2 workers")
        assert restarts(server.url) == 0
        seen = set(first)
        victim = min(first)
        for round_ in (1, 2):  # then the new one is killed young: its replacement waits longer
            os.kill(victim, signal.SIGKILL)
            current = wait_until(partial(replaced, parent, frozenset(seen)), "a new worker")
            (new,) = current - seen
            seen |= current
            assert victim not in current
            assert new in current
            for url in urls:  # every listener answers, and the new worker is among them
                answering = {worker_of(answer) for answer in answers_from(f"{url}/health", 2)}
                assert answering == current, (url, answering, current)
            assert {restarts(url) for url in urls} == {round_}  # every worker says the same
            warning = next(
                line
                for line in log_lines(server)
                if line["level"] == "warning" and f"worker {victim} " in line["message"]
            )
            assert "was killed by SIGKILL (status -9)" in warning["message"]
            wait = "0.5" if round_ == 1 else "1.0"
            assert warning["message"].endswith(f"starting another in {wait} s"), warning
            victim = new
        workers = children(parent)
        assert server.stop() == 0
        assert not any(alive(pid) for pid in workers), "a worker outlived the server"
        assert children(parent) == set()
    finally:
        server.stop()
    log = server.log()
    assert log.count("stopped: connection pools closed") == 2  # both graceful
    assert log.count("starting another") == 2  # nothing started during the stop
