"""The command line, consistent: --version, shell completion, one way to name the server
(--url, --stateful-url; the old spellings still work with a notice) and --json everywhere."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from statebridge import __version__
from tests.support.commands import statebridge
from tests.support.recordings import PHASE1
from tests.support.servers import Server, clean_env

BIN = Path(sys.executable).parent  # where the `statebridge` script is installed


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(env={}, data_dir=tmp_path_factory.mktemp("cli")).start()
    yield server
    server.stop()


def one_document(result: subprocess.CompletedProcess[str], code: int = 0) -> Any:
    """The one JSON document on standard output (json.loads refuses anything more)."""
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return json.loads(result.stdout)


def notices(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if "is deprecated; use" in line]


# --version and completion


def test_version_option_and_command_print_the_version() -> None:
    for args in (["--version"], ["version"]):
        result = statebridge({}, *args)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == __version__
    assert one_document(statebridge({}, "version", "--json")) == {"version": __version__}


def completing(words: str, env: dict[str, str] | None = None) -> list[str]:
    """What the completion protocol answers for the command line `words` (cursor at its end)."""
    cword = len(words.split()) - 1
    protocol = {"_STATEBRIDGE_COMPLETE": "complete_bash", "COMP_WORDS": words}
    result = subprocess.run(
        [str(BIN / "statebridge")],
        env=clean_env({**protocol, "COMP_CWORD": str(cword), **(env or {})}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_completion_protocol_completes_commands_and_subcommands() -> None:
    assert completing("statebridge mi") == ["migrate"]
    assert completing("statebridge migrate se") == ["sessions"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script_and_installs_nothing(shell: str, tmp_path: Path) -> None:
    result = statebridge({"HOME": str(tmp_path)}, "completion", shell)
    assert result.returncode == 0, result.stderr
    assert "_STATEBRIDGE_COMPLETE" in result.stdout
    assert list(tmp_path.iterdir()) == []  # no shell file written


def test_the_bash_script_completes_in_a_real_bash(tmp_path: Path) -> None:
    script = statebridge({}, "completion", "bash").stdout
    (tmp_path / "complete.bash").write_text(script)
    line = (
        f"source {shlex.quote(str(tmp_path / 'complete.bash'))}; "
        "COMP_WORDS=(statebridge mi); COMP_CWORD=1; _statebridge_completion statebridge; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    env = clean_env({"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", line],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["migrate"]


def test_typer_s_installing_options_stay_off() -> None:
    result = statebridge({}, "--install-completion")
    assert result.returncode == 2
    assert "No such option" in result.stderr


# one way to name the server


def test_check_takes_url_and_stateful_url(target: Server) -> None:
    combined = one_document(statebridge({}, "check", "--url", target.url, "--json"))
    assert combined["stateless_url"] == f"{target.url}/api/stateless"
    assert combined["failed"] == 0
    result = statebridge(
        {}, "check", "--url", target.stateless_url, "--stateful-url", target.stateful_url, "--json"
    )
    separate = one_document(result)
    assert separate["stateless_url"] == target.stateless_url
    assert separate["stateful_url"] == target.stateful_url
    assert notices(result) == []


@pytest.mark.parametrize(
    ("old", "notice"),
    [
        (["check", "{url}"], "`statebridge check URL` is deprecated; use `statebridge check --url"),
        (["check", "--stateless-url", "{stateless}", "--stateful-url", "{stateful}"],
         "--stateless-url is deprecated; use --url"),
        (["demo", "stateless", "--stateless-url", "{stateless}", "--brief"],
         "--stateless-url is deprecated; use --url"),
    ],
)  # fmt: skip
def test_old_spellings_still_work_with_one_notice(
    target: Server, old: list[str], notice: str
) -> None:
    urls = {"url": target.url, "stateless": target.stateless_url, "stateful": target.stateful_url}
    result = statebridge({}, *[arg.format(**urls) for arg in old])
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(notices(result)) == 1 and notice in notices(result)[0], result.stderr


def test_the_locate_hint_names_the_new_options(target: Server) -> None:
    result = statebridge({}, "check", "--url", target.stateful_url, "--json")
    data = one_document(result, code=2)
    assert "pass --url" in data["error"] and data["rows"] == []


def test_bench_takes_url_stateful_url_json_and_out(target: Server, tmp_path: Path) -> None:
    args = [
        "bench", "--url", target.stateless_url, "--stateful-url", target.stateful_url,
        "--duration", "1", "--warmup", "0", "--connections", "2", "--sessions", "2",
        "--endpoints", "/health", "--engine", "python",
    ]  # fmt: skip
    data = one_document(statebridge({}, *args, "--out", str(tmp_path / "b.json"), "--json"))
    assert data["summary"] and json.loads((tmp_path / "b.json").read_text()) == data
    old = statebridge({}, *args, "--json", str(tmp_path / "old.json"))
    assert old.returncode == 0, old.stderr
    assert "--json PATH is deprecated; use --out PATH" in old.stderr
    assert "wrote " in old.stdout and (tmp_path / "old.json").exists()


# --json everywhere: one document on standard output


def test_demo_json_is_one_document(target: Server) -> None:
    for which in ("stateless", "stateful", "compare"):
        result = statebridge(
            {}, "demo", which, "--url", target.stateless_url,
            "--stateful-url", target.stateful_url, "--json",
        )  # fmt: skip
        data = one_document(result)
        assert data["demo"] == which and data["passed"] is True and data["error"] is None
        assert data["exchanges"] and all(e["status"] for e in data["exchanges"])
        assert "→ " in result.stderr  # the narration went to standard error


def test_soak_takes_url_and_json(target: Server) -> None:
    args = ["soak", "--url", target.url, "--duration", "2", "--connections", "2"]
    result = statebridge({}, *args, "--json")
    data = json.loads(result.stdout)
    assert result.returncode == (0 if data["passed"] else 1), result.stderr
    assert data["instances"] == [target.url] and data["requests"] > 0
    old = statebridge({}, "soak", "--target", target.url, "--duration", "1", "--connections", "2")
    assert "--target is deprecated; use --url" in old.stderr
    assert "statebridge soak:" in old.stdout


def test_database_commands_print_one_document(tmp_path: Path) -> None:
    env = {"STATEBRIDGE_DATA_DIR": str(tmp_path / "data")}
    assert one_document(statebridge(env, "db", "upgrade", "--json")) == {"revision": "head"}
    current = one_document(statebridge(env, "db", "current", "--json"))
    assert current["up_to_date"] is True and current["current"] == current["head"]
    users = str(PHASE1 / "users.json")
    assert one_document(statebridge(env, "migrate", "data", "--users", users, "--json"))
    sessions = str(PHASE1 / "phase1-sessions.json")
    assert one_document(statebridge(env, "migrate", "sessions", sessions, "--json"))
    export = one_document(statebridge(env, "export", str(tmp_path / "export.json"), "--json"))
    assert export["users"] > 0 and export["out"].endswith("export.json")
    backup = one_document(statebridge(env, "backup", str(tmp_path / "backup.jsonl"), "--json"))
    assert {table["table"] for table in backup["tables"]} >= {"users", "products"}
    # to standard output the backup itself goes; then the report is on standard error
    piped = statebridge(env, "backup", "-", "--json")
    assert piped.returncode == 0, piped.stderr
    assert all(json.loads(line) for line in piped.stdout.splitlines())
    assert json.loads(piped.stderr[piped.stderr.index("{\n") :])["tables"] == backup["tables"]
    fresh = {"STATEBRIDGE_DATA_DIR": str(tmp_path / "fresh")}
    restored = one_document(statebridge(fresh, "restore", str(tmp_path / "backup.jsonl"), "--json"))
    assert restored["tables"] == backup["tables"]
    bench = one_document(
        statebridge(env, "migrate", "bench", "--sqlite", "--users", "20", "--products", "5",
                    "--json")
    )  # fmt: skip
    assert bench["users"] == 20 and bench["timings"]
    migrations = [t for t in bench["timings"] if t["step"].startswith("statebridge ")]
    assert len(migrations) == 2 and all(t["cpu_seconds"] > 0 for t in migrations), migrations
    assert one_document(statebridge(env, "db", "downgrade", "base", "--json")) == {
        "revision": "base"
    }
