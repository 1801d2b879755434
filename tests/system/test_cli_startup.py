"""Starting `statebridge`: clear one-line failures, helpful --help, data that survives restarts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.envelope import success_data
from tests.support.recordings import PHASE1
from tests.support.servers import Server, clean_env, free_port

SECONDS = 60  # generous bound on a process that should exit at once; not a speed assertion
# uvicorn finishes its graceful shutdown and then re-raises the signal it was stopped with
CLEAN_EXITS = (0, -signal.SIGTERM)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = clean_env({"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "statebridge", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=SECONDS,
        check=False,
    )


def assert_one_line_failure(result: subprocess.CompletedProcess[str], starts: str) -> str:
    assert result.returncode != 0, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(starts), lines[0]
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("face", ["combined", "stateless", "stateful"])
def test_a_busy_port_is_one_clear_line(busy_port: int, face: str, tmp_path: Path) -> None:
    ports = {"combined": free_port(), "stateless": free_port(), "stateful": free_port()}
    ports[face] = busy_port
    result = run_cli(
        "serve",
        "--port", str(ports["combined"]),
        "--stateless-port", str(ports["stateless"]),
        "--stateful-port", str(ports["stateful"]),
        "--data-dir", str(tmp_path / "data"),
    )  # fmt: skip
    line = assert_one_line_failure(result, "statebridge: cannot listen on ")
    assert f":{busy_port}" in line
    assert face in line


def test_an_unwritable_data_dir_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    target = blocker / "data"
    result = run_cli(
        "serve",
        "--port", str(free_port()),
        "--stateless-port", "0",
        "--stateful-port", "0",
        env={"STATEBRIDGE_DATA_DIR": str(target)},
    )  # fmt: skip
    line = assert_one_line_failure(result, "statebridge: ")
    assert "data" in line and str(blocker) in line
    assert not target.exists()


def test_all_ports_off_is_one_clear_line(tmp_path: Path) -> None:
    result = run_cli(
        "serve", "--port", "0", "--stateless-port", "0", "--stateful-port", "0",
        "--data-dir", str(tmp_path),
    )  # fmt: skip
    assert_one_line_failure(result, "statebridge: ")


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("STATEBRIDGE_SESSION_TTL", "soon", "an integer of at least 1"),
        ("STATEBRIDGE_HTTP_SERVER", "granain", "auto, granian, uvicorn"),  # lists the choices
    ],
)
def test_a_bad_setting_is_one_clear_line(tmp_path: Path, name: str, value: str, named: str) -> None:
    result = run_cli("serve", "--data-dir", str(tmp_path), env={name: value})
    line = assert_one_line_failure(result, f"statebridge: {name}={value!r} is not accepted: ")
    assert line.endswith(named), line
    assert result.returncode == 2


BAD_SETTINGS = {
    "STATEBRIDGE_LOG_LEVEL": ("verbose", "one of debug, info, warning, error, critical"),
    "STATEBRIDGE_HTTP_SERVER": ("bogus", "one of auto, granian, uvicorn"),
    "DATABASE_URL": ("mysql://x", "a postgresql:// URL, or sqlite:///PATH"),
    "STATEBRIDGE_PORT": ("abc", "an integer from 0 to 65535"),
}
USERS = str(PHASE1 / "users.json")
# every command that runs on the settings; none of them gets as far as doing anything
SETTINGS_COMMANDS = {
    "serve": ("serve", "--stateless-port", "0", "--stateful-port", "0"),
    "migrate data": ("migrate", "data", "--users", USERS),
    "migrate sessions": ("migrate", "sessions", str(PHASE1 / "phase1-sessions.json")),
    "export": ("export", "{tmp}/export.json"),
    "backup": ("backup", "{tmp}/backup.jsonl"),
    "restore": ("restore", USERS),
    "db upgrade": ("db", "upgrade"),
    "db downgrade": ("db", "downgrade"),
    "db current": ("db", "current"),
    "soak": ("soak", "--duration", "1", "--connections", "2", "--instances", "1"),
    "bench-floor": ("bench-floor", "--port", "1"),
}


@pytest.mark.parametrize("setting", list(BAD_SETTINGS))
@pytest.mark.parametrize("command", list(SETTINGS_COMMANDS))
def test_every_command_refuses_a_bad_setting_in_one_line(
    tmp_path: Path, setting: str, command: str
) -> None:
    value, accepted = BAD_SETTINGS[setting]
    args = [arg.format(tmp=tmp_path) for arg in SETTINGS_COMMANDS[command]]
    # STATEBRIDGE_PORT=0: should the bad setting pass, serve stops at once all the same
    env = {"STATEBRIDGE_DATA_DIR": str(tmp_path / "data"), "STATEBRIDGE_PORT": "0"}
    result = run_cli(*args, env={**env, setting: value})
    assert result.returncode == 2, result
    line = assert_one_line_failure(result, f"statebridge: {setting}={value!r} is not accepted: ")
    assert accepted in line, line
    assert result.stdout == ""
    assert not (tmp_path / "data").exists() and list(tmp_path.iterdir()) == []


def test_a_bad_option_is_named_as_the_option(tmp_path: Path) -> None:
    result = run_cli("serve", "--port", "99999", "--data-dir", str(tmp_path / "data"))
    line = assert_one_line_failure(result, "statebridge: --port=99999 is not accepted: ")
    assert line.endswith("an integer from 0 to 65535") and result.returncode == 2


def test_several_bad_settings_share_the_line_and_a_password_is_not_shown(
    tmp_path: Path,
) -> None:
    env = {
        "DATABASE_URL": "mysql://app:s3cret@db/shop",
        "STATEBRIDGE_WORKERS": "0",
        "STATEBRIDGE_DATA_DIR": str(tmp_path),
    }
    result = run_cli("db", "current", env=env)
    line = assert_one_line_failure(result, "statebridge: ")
    assert "DATABASE_URL='mysql://app:***@db/shop' is not accepted" in line
    assert "STATEBRIDGE_WORKERS='0' is not accepted: an integer from 1 to 64" in line
    assert "s3cret" not in result.stderr and result.returncode == 2


def test_the_log_level_is_case_insensitive(tmp_path: Path) -> None:
    result = run_cli("db", "upgrade", env={"STATEBRIDGE_LOG_LEVEL": "WARNING",
                                           "STATEBRIDGE_DATA_DIR": str(tmp_path)})  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_help_explains_the_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for word in ("serve", "db", "version", "SQLite", "PostgreSQL", "Redis"):
        assert word in text, word


def test_serve_help_explains_its_options() -> None:
    result = run_cli("serve", "--help")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for option, words in {
        "--host": "Address to listen on",
        "--port": "Combined API port",
        "--stateless-port": "stateless",
        "--stateful-port": "stateful",
        "--workers": "Worker processes",
        "--data-dir": "SQLite",
        "--migrate": "schema",
    }.items():
        assert option in text, option
        assert words in text, words


def test_no_arguments_shows_help() -> None:
    result = run_cli()
    assert "serve" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_version() -> None:
    from statebridge import __version__

    result = run_cli("version")
    assert result.returncode == 0
    assert result.stdout.strip() == __version__


def test_data_survives_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = Server(env={}, data_dir=data_dir).start()
    try:
        with httpx.Client(timeout=15) as http:
            base = first.stateful_url
            created = http.post(f"{base}/session", json={"userId": "user002", "data": {"k": 1}})
            session_id = created.headers["session-id"]
            headers = {"Session-ID": session_id}
            http.post(
                f"{base}/cart/add", json={"productId": "prod001", "quantity": 3}, headers=headers
            )
            http.post(f"{base}/cart/add", json={"productId": "prod003"}, headers=headers)
            prefs = {"theme": "solarized", "fontSize": 14}
            put = http.put(
                f"{base}/profile/preferences", json={"preferences": prefs}, headers=headers
            )
            success_data(put, "Preferences updated")
            before = success_data(http.get(f"{base}/cart", headers=headers), "Cart retrieved")
            visits = success_data(
                http.get(f"{base}/demonstrate/stateful", headers=headers),
                "Stateful behavior demonstration",
            )["visitCount"]
            count = success_data(http.get(f"{first.url}/info"), "Stateless server information")
    finally:
        code = first.stop(signal.SIGTERM)
    assert code in CLEAN_EXITS, first.log()

    second = Server(env={}, data_dir=data_dir).start()
    try:
        with httpx.Client(timeout=15) as http:
            base = second.stateful_url
            session = success_data(
                http.get(f"{base}/session", headers=headers), "Session information"
            )
            assert session["session"]["id"] == session_id
            assert session["session"]["data"]["k"] == 1
            assert session["session"]["data"]["visitCount"] == visits
            after = success_data(http.get(f"{base}/cart", headers=headers), "Cart retrieved")
            assert after["cart"]["items"] == before["cart"]["items"]
            assert after["cart"]["total"] == before["cart"]["total"] == 99.96
            profile = success_data(http.get(f"{base}/profile", headers=headers), "User profile")
            assert profile["profile"]["preferences"] == prefs
            user = success_data(http.get(f"{second.url}/users/user002"), "User found")
            assert user["user"]["preferences"] == prefs
            again = success_data(http.get(f"{second.url}/info"), "Stateless server information")
            assert again["requestCount"] > count["requestCount"]
    finally:
        assert second.stop(signal.SIGTERM) in CLEAN_EXITS, second.log()


def test_the_package_runs_as_a_module_and_as_a_script() -> None:
    script = Path(sys.executable).with_name("statebridge")
    if not script.exists():
        pytest.skip("the statebridge console script is not installed in this environment")
    result = subprocess.run(
        [str(script), "version"],
        env=clean_env({}),
        capture_output=True,
        text=True,
        timeout=SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == run_cli("version").stdout.strip()
    assert os.access(script, os.X_OK)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("redis+sentinel://:s3cret@127.0.0.1:1", "needs the master's name"),
        ("redis+sentinel://127.0.0.1:1,127.0.0.1/mymaster", "host:port pairs"),
        ("redis+cluster://127.0.0.1:1/3", "takes no database number"),
        ("memcached://127.0.0.1:1", "redis+sentinel://"),
    ],
)
def test_a_bad_redis_url_is_one_clear_line(tmp_path: Path, value: str, named: str) -> None:
    result = run_cli("serve", "--data-dir", str(tmp_path), env={"REDIS_URL": value})
    line = assert_one_line_failure(result, "statebridge: REDIS_URL=")
    assert "is not accepted: " in line and named in line, line
    assert "s3cret" not in result.stderr and result.returncode == 2
