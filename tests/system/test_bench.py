"""`statebridge bench` runs end to end against a real server and writes what it measured.

Short, light runs (a second each, a few connections, loopback only); nothing here asserts
a speed, only that every request was answered and counted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import Server, clean_env


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(env={}, data_dir=tmp_path_factory.mktemp("bench")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def second(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Another statebridge, as the baseline (Phase 1's place)."""
    server = Server(env={}, data_dir=tmp_path_factory.mktemp("baseline")).start()
    yield server
    server.stop()


def bench(server: Server, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    chosen = [] if "--cases" in extra else ["--endpoints", "/health,/users"]
    command = [
        sys.executable, "-m", "statebridge", "bench",
        "--url", server.stateless_url,
        "--stateful-url", server.stateful_url,
        "--duration", "1", "--warmup", "0",
        "--connections", "4", "--sessions", "3",
        *chosen,
        "--json", str(out),
        *extra,
    ]  # fmt: skip
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=clean_env({}), check=False
    )


def assert_clean(run: dict[str, object], name: str) -> None:
    assert run["responses"], f"{name}: no answers"
    assert run["errors"] == 0, f"{name}: {run}"
    assert run["success_rate"] == 1.0
    assert 0 < run["p50_ms"] <= run["p90_ms"] <= run["p99_ms"] <= run["max_ms"]  # type: ignore[operator]


@pytest.mark.parametrize("engine", ["python", "wrk"])
def test_bench_against_a_baseline_writes_json_and_a_table(
    target: Server, tmp_path: Path, engine: str
) -> None:
    if engine == "wrk" and shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (scripts/ci-install-bench.sh installs it)")
    out = tmp_path / "bench.json"
    server_pid = target.process.pid if target.process else 0
    done = bench(
        target,
        out,
        "--engine", engine,
        "--baseline", target.stateless_url,
        "--baseline-stateful-url", target.stateful_url,
        "--baseline-name", "again",
        "--pid", str(server_pid),
        "--pid", str(os.getpid()),  # a second root, whose tree holds the first
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    scenarios = [row["scenario"] for row in report["summary"]]
    assert scenarios == ["GET /health", "GET /users", "mix: POST /cart/add + GET /cart"]
    for row in report["summary"]:
        assert_clean(row["statebridge"], f"{row['scenario']} statebridge")
        assert_clean(row["again"], f"{row['scenario']} again")
        assert row["ratio"] > 0
    assert len(report["results"]) == 6
    assert report["machine"]["nproc"] >= 1
    for result in report["results"]:
        assert 0 < result["machine_busy_percent"] <= 100, result
        if result["target"] == "statebridge":  # the baseline was given no --pid
            assert result["cpu_us_per_request"] > 0, result
            shares = result["cpu_by_pid"]
            assert set(shares) == {str(server_pid), str(os.getpid())}, result
            assert shares[str(server_pid)] > 0
            # the server runs below this test's process: counted once, not twice
            assert result["cpu_seconds"] == pytest.approx(shares[str(os.getpid())], abs=0.002)
        else:
            assert "cpu_us_per_request" not in result and not result["cpu_by_pid"], result
    assert report["targets"][0]["pids"] == [server_pid, os.getpid()]
    # bytes per answer: the body as sent, plus a head of some hundred bytes
    users = httpx.get(f"{target.stateless_url}/users", timeout=10)
    by_scenario = {row["scenario"]: row for row in report["summary"]}
    for server in ("statebridge", "again"):
        size = by_scenario["GET /users"][server]["bytes_per_answer"]
        assert len(users.content) < size < len(users.content) + 1000, (server, size)
    assert "| KB/answer | CPU µs/req | machine busy |" in done.stdout
    assert "| GET /users | statebridge |" in done.stdout
    assert "| mix: POST /cart/add + GET /cart | statebridge |" in done.stdout


@pytest.mark.parametrize("engine", ["python", "wrk"])
def test_every_case_runs_clean_against_a_second_statebridge(
    target: Server, second: Server, tmp_path: Path, engine: str
) -> None:
    """`--cases all`: every route of both APIs and the session lifecycle, each answered 2xx
    on both servers, in one table with the lowest ratio first."""
    from statebridge.ops.bench.cases import select

    if engine == "wrk" and shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (scripts/ci-install-bench.sh installs it)")
    catalog = httpx.get(f"{target.stateless_url}/users", timeout=10).json()["data"]["users"]
    out = tmp_path / "bench.json"
    done = bench(
        target,
        out,
        "--cases", "all",
        "--engine", engine,
        "--baseline", second.stateless_url,
        "--baseline-stateful-url", second.stateful_url,
        "--baseline-name", "second",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    names = [case.name for case in select("all")]
    assert report["options"]["cases"] == names
    assert [row["scenario"] for row in report["summary"]] == names
    assert len(report["results"]) == 2 * len(names)
    for row in report["summary"]:
        for server in ("statebridge", "second"):
            assert_clean(row[server], f"{row['scenario']} {server}")
            # read from each server's /metrics around the run (a Phase 1 would have None)
            assert isinstance(row[server]["connections_opened"], int), row[server]
        assert row["ratio"] > 0
    by_name = {row["scenario"]: row for row in report["summary"]}
    for name, unit in (
        ("session lifecycle", "lifecycles"),
        ("stateful DELETE /session", "sessions"),
    ):
        for server in ("statebridge", "second"):
            flows = by_name[name][server]
            assert flows["flows"] > 0 and flows["flow_unit"] == unit, flows
            assert flows["engine"] == "python"
    # the table: every case, side by side, the lowest ratio first
    lines = done.stdout.splitlines()
    first_rows = [line for line in lines if line.startswith("| ") and "| statebridge |" in line]
    assert [line.split(" | ")[0].removeprefix("| ") for line in first_rows] == sorted(
        names, key=lambda name: by_name[name]["ratio"]
    )
    ratios = [float(line.rstrip(" |").rsplit("| ", 1)[1].rstrip("x")) for line in first_rows]
    assert ratios == sorted(ratios)
    assert sum("| second |" in line for line in lines) == len(names)
    assert any("lifecycles/s)" in line for line in first_rows)
    assert (
        "| conns opened |"
        in lines[next(i for i, line in enumerate(lines) if "| scenario |" in line)]
    )
    # the preferences written were each user's own: the catalog is as it was
    after = httpx.get(f"{target.stateless_url}/users", timeout=10).json()["data"]["users"]
    assert [user["preferences"] for user in after] == [user["preferences"] for user in catalog]


def test_cases_are_checked_before_any_load(tmp_path: Path) -> None:
    server = Server(env={}, data_dir=tmp_path)  # never started: the check comes first
    done = bench(server, tmp_path / "bench.json", "--cases", "GET /health,GET /nowhere")
    assert done.returncode == 2
    assert "no case matches 'GET /nowhere'" in done.stderr and "Traceback" not in done.stderr
    both = bench(server, tmp_path / "bench.json", "--cases", "all", "--endpoints", "/health")
    assert both.returncode == 2 and "give --cases or --endpoints, not both" in both.stderr
    assert not (tmp_path / "bench.json").exists()


def test_the_stateful_mix_really_fills_the_carts(target: Server, tmp_path: Path) -> None:
    """The mix's sessions are live: every cart request was a 2xx, and carts grew."""
    out = tmp_path / "bench.json"
    done = bench(target, out, "--engine", "python", "--endpoints", "/health")
    assert done.returncode == 0, done.stderr
    mix = json.loads(out.read_text())["summary"][-1]["statebridge"]
    assert_clean(mix, "mix")
    assert mix["responses"] >= 2
    health = httpx.get(f"{target.stateful_url}/health", timeout=10).json()
    assert health["data"]["activeCarts"] >= 3  # the run's three sessions all have a cart


def test_bench_writes_a_chart_when_matplotlib_is_there(target: Server, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out, chart = tmp_path / "bench.json", tmp_path / "bench.png"
    done = bench(target, out, "--engine", "python", "--no-stateful", "--chart", str(chart))
    assert done.returncode == 0, done.stderr
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_unreachable_server_is_one_clear_error(tmp_path: Path) -> None:
    server = Server(env={}, data_dir=tmp_path)  # never started: nothing listens there
    done = bench(server, tmp_path / "bench.json", "--engine", "python")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("statebridge bench:") and server.stateless_url in last, last
    assert "Traceback" not in done.stderr


def test_a_watched_disk_gets_a_column_and_a_figure_per_run(target: Server, tmp_path: Path) -> None:
    from statebridge.ops.bench.disk import devices, real_devices

    device = real_devices(devices())[0]
    out = tmp_path / "bench.json"
    done = bench(target, out, "--engine", "python", "--endpoints", "/health", "--disk", device)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["options"]["disk"] == device
    assert [type(run["disk_stall_ms"]) for run in report["results"]] == [float, float]
    header = next(line for line in done.stdout.splitlines() if line.startswith("| scenario"))
    assert "| disk stall ms |" in header
    rows = [line for line in done.stdout.splitlines() if line.startswith("| GET /health")]
    assert rows and rows[0].count("|") == header.count("|")


def test_an_unknown_disk_is_refused_before_any_load(tmp_path: Path) -> None:
    server = Server(env={}, data_dir=tmp_path)  # never started: the check comes first
    done = bench(server, tmp_path / "bench.json", "--disk", "/dev/nosuchdisk")
    assert done.returncode == 2
    assert "no block device 'nosuchdisk'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "bench.json").exists()
