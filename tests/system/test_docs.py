"""The documents, run the way a reader runs them: from a fresh copy in an empty folder.

The repository's files (tracked and untracked ones that git does not ignore, as they are in
the working tree) are copied into `<tmp>/empty/statebridge`, with nothing else in `<tmp>/empty`.
Each document then gets one bash process in that copy, fed its ```bash and ```console blocks
in order, command by command, so that `export`, `cd`, `. .venv/bin/activate` and shell
variables carry over between blocks as in a terminal. The documents run in the order of
DOCUMENTS, in the same copy: the migration walk-through, for example, runs after the README's
`serve` has seeded the default database, as it would for a reader.

Commands:

- In a ```bash block every command runs (one line, or several joined by a trailing
  backslash or a here-document; comment lines are left out). Its output is not compared.
- In a ```console block the lines starting with `$ ` are commands; the lines after one, up to
  the next `$ ` or the end of the block, are its shown output, compared with what it printed
  (standard output and standard error together, as a terminal shows them): every shown line
  must match the actual lines in order, from the first to the last; a shown line `...` stands
  for any number of lines. Trailing spaces are ignored.
- Every command must exit 0, unless an annotation says otherwise.

Only what varies from run to run is normalised, on both sides: a duration (`in 0.23 s`,
`"latencyMs": 1.81`); an ISO time (`2026-11-29T15:23:50.497Z`) printed during the run (any
shown time matches it; a fixed time, such as one given with `--now`, is compared as it is);
a date (`2026-11-29`) that is today's (as `$(date +%F)` gives it); a UUID (any shown UUID
matches any UUID). Counts,
checksums and table layouts are compared exactly. The shell runs with `COLUMNS=200` (Rich
draws its tables at their natural width, as on a wide terminal), `NO_COLOR=1`, `TERM=dumb`
and `PYTHONUNBUFFERED=1` (standard output and standard error interleave as on a terminal).

Annotations, an HTML comment on the line(s) right before a block, items separated by commas:

- `<!-- doc-test: skip (reason) -->`: the block does not run; the reason is required.
- `<!-- doc-test: exit N -->`: the block's commands must exit with status N.
- `<!-- doc-test: background, ready URL -->`: the block's last command runs a server in the
  foreground; it is started in the background, and the next block waits until URL answers
  (below 500). A server started this way earlier in the same document is stopped first, with
  SIGINT to its process group (the reader's Ctrl-C), as one terminal runs one server.
- `<!-- doc-test: env NAME=value ... -->`: the block runs as written, and right after each of
  its `export NAME=...` commands the test runs `export NAME=value`: the placeholders of the
  production examples (hosts `db` and `redis`) become the servers on loopback. In a value,
  `{fresh_db}` is a database this test creates for the document (and drops at the end); the
  Redis database used is 9 (flushed before and after, never anything else).
- `<!-- doc-test: needs PROGRAM (reason) -->`: the block runs only when PROGRAM is on the PATH
  (CI installs it); otherwise it counts as skipped, with the reason.

The environment is the test's own, minus STATEBRIDGE_*, DATABASE_URL, REDIS_URL, DEBUG and
VIRTUAL_ENV, and with this checkout's virtualenv taken off the PATH: the documents must put
`statebridge` on the PATH themselves. Servers listen on the default ports 8000, 3001 and 3002.
Everything the shell started is stopped at the end of each document, by process group,
whatever happened. A failure names the block (file and line), the command, the shown lines
and the actual output.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path

import httpx
import pytest

from tests.support.databases import REDIS_BASE_URL, execute_admin
from tests.support.recordings import ROOT
from tests.support.servers import clean_env, free_port

pytestmark = pytest.mark.docs

DOCUMENTS = ["README.md", "docs/migration.md", "docs/operations.md", "docs/deployment.md"]
# documents whose blocks must nearly all run: at most this share may be skipped
MOSTLY_RUN = {"README.md": 0.25, "docs/migration.md": 0.25}
DOCS_REDIS_DB = 9
PORTS = (8000, 3001, 3002)
COMMAND_TIMEOUT = 240.0  # a fresh `pip install -e .` included
READY_TIMEOUT = 300.0
RUN_LANGUAGES = {"bash", "console"}


# --- reading the documents -------------------------------------------------------------


@dataclass
class Annotation:
    skip: str | None = None
    exit: int = 0
    ready: str | None = None  # background server: the URL that answers once it is up
    env: dict[str, str] = field(default_factory=dict)
    needs: tuple[str, str] | None = None  # (program, reason)


@dataclass
class Command:
    line: int  # where the command starts in the document
    text: str
    shown: list[str] | None = None  # console blocks: the output shown after it


@dataclass
class Block:
    path: str
    line: int  # the opening fence
    lang: str
    commands: list[Command]
    annotation: Annotation

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


ANNOTATION = re.compile(r"^\s*<!--\s*doc-test:\s*(?P<body>.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w+-]*)\s*$")


def parse_annotation(body: str, where: str) -> Annotation:
    found = Annotation()
    background = False
    items = [item.strip() for item in re.split(r",(?![^(]*\))", body) if item.strip()]
    for item in items:
        word, _, rest = item.partition(" ")
        rest = rest.strip()
        if word == "skip":
            reason = re.fullmatch(r"\((.+)\)", rest)
            assert reason, f"{where}: `skip` needs a reason in parentheses: {item!r}"
            found.skip = reason.group(1)
        elif word == "exit":
            assert rest.isdigit(), f"{where}: `exit` needs a status: {item!r}"
            found.exit = int(rest)
        elif word == "background":
            assert not rest, f"{where}: `background` takes nothing: {item!r}"
            background = True
        elif word == "ready":
            assert rest.startswith("http"), f"{where}: `ready` needs a URL: {item!r}"
            found.ready = rest
        elif word == "env":
            for pair in shlex.split(rest):
                name, equals, value = pair.partition("=")
                assert equals and name, f"{where}: `env` takes NAME=value pairs: {item!r}"
                found.env[name] = value
            assert found.env, f"{where}: `env` names no variable"
        elif word == "needs":
            parts = re.fullmatch(r"(\S+)\s+\((.+)\)", rest)
            assert parts, f"{where}: `needs` takes a program and a reason: {item!r}"
            found.needs = (parts.group(1), parts.group(2))
        else:
            raise AssertionError(f"{where}: unknown doc-test annotation {item!r}")
    assert background == (found.ready is not None), f"{where}: `background, ready URL` go together"
    return found


def split_bash(lines: list[tuple[int, str]]) -> list[Command]:
    """A bash block's commands: continuation lines and here-documents joined, comments out."""
    commands: list[Command] = []
    current: list[str] = []
    start = 0
    heredoc: str | None = None
    for number, line in lines:
        if heredoc is not None:
            current.append(line)
            if line.strip() == heredoc:
                heredoc = None
                commands.append(Command(start, "\n".join(current)))
                current = []
            continue
        if not current:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            start = number
        current.append(line)
        opened = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line)
        if opened:
            heredoc = opened.group(1)
            continue
        if line.endswith("\\"):
            continue
        commands.append(Command(start, "\n".join(current)))
        current = []
    assert not current, f"line {start}: an unfinished command at the end of the block"
    return commands


def split_console(lines: list[tuple[int, str]], where: str) -> list[Command]:
    """A console block's `$ ` commands, each with the output shown after it."""
    commands: list[Command] = []
    continued = False
    for number, line in lines:
        if continued:
            commands[-1].text += "\n" + re.sub(r"^> ", "", line)
            continued = line.endswith("\\")
        elif line.startswith("$ "):
            commands.append(Command(number, line[2:], []))
            continued = line.endswith("\\")
        else:
            assert commands, f"{where}: output before the first `$ ` command: {line!r}"
            shown = commands[-1].shown
            assert shown is not None
            shown.append(line.rstrip())
    for command in commands:
        while command.shown and command.shown[-1] == "":
            command.shown.pop()
    return commands


def parse_blocks(path: str, text: str) -> list[Block]:
    """Every fenced block with bash or console, with the annotation right before it."""
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    pending: tuple[int, str] | None = None  # an annotation waiting for its block
    while index < len(lines):
        line = lines[index]
        annotation = ANNOTATION.match(line)
        fence = FENCE.match(line)
        if annotation:
            assert pending is None, f"{path}:{index + 1}: two annotations in a row"
            pending = (index + 1, annotation.group("body"))
        elif fence:
            indent, lang, opened_at = len(fence.group("indent")), fence.group("lang"), index + 1
            body: list[tuple[int, str]] = []
            index += 1
            while not re.match(r"^\s*```\s*$", lines[index]):
                body.append((index + 1, lines[index][indent:]))
                index += 1
            where = f"{path}:{opened_at}"
            if lang in RUN_LANGUAGES:
                found = parse_annotation(pending[1], where) if pending else Annotation()
                commands = split_bash(body) if lang == "bash" else split_console(body, where)
                assert commands, f"{where}: a {lang} block without a command"
                blocks.append(Block(path, opened_at, lang, commands, found))
            else:
                assert pending is None, f"{where}: an annotation before a ```{lang} block"
            pending = None
        elif line.strip() and pending is not None:
            raise AssertionError(f"{path}:{pending[0]}: an annotation not right before a block")
        index += 1
    assert pending is None, f"{path}:{pending[0]}: an annotation at the end of the document"
    return blocks


# --- comparing output ------------------------------------------------------------------

DURATION = re.compile(r"(?<=\bin )\d+(?:\.\d+)?(?= s\b)|(?<=\"latencyMs\": )\d+(?:\.\d+)?")
ISO_TIME = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")
DATE = re.compile(r"\b\d{4}-\d\d-\d\d\b(?!T)")
UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
NOW, TODAY, SOME_UUID = "\x00now\x00", "\x00today\x00", "\x00uuid\x00"
VARYING = re.compile(
    f"(?P<duration>{DURATION.pattern})|(?P<time>{ISO_TIME.pattern})"
    f"|(?P<date>{DATE.pattern})|(?P<uuid>{UUID.pattern})"
)


@dataclass
class Clock:
    """The run's window: the times and dates that count as `now` in an output."""

    started: datetime

    def is_now(self, stamp: str) -> bool:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        return (
            self.started - timedelta(minutes=1)
            <= moment
            <= datetime.now(UTC) + timedelta(minutes=1)
        )

    def is_today(self, day: str) -> bool:
        moments = (self.started, datetime.now(UTC))
        days = {m.date() for m in moments} | {m.astimezone().date() for m in moments}
        return date.fromisoformat(day) in days


def normalise_actual(line: str, clock: Clock) -> str:
    line = DURATION.sub("<s>", line.rstrip())
    line = ISO_TIME.sub(lambda m: NOW if clock.is_now(m.group()) else m.group(), line)
    line = DATE.sub(lambda m: TODAY if clock.is_today(m.group()) else m.group(), line)
    return UUID.sub(SOME_UUID, line)


@cache
def shown_pattern(line: str) -> re.Pattern[str]:
    """A shown line as a pattern: varying values also match their run-time placeholder."""
    parts: list[str] = []
    position = 0
    for match in VARYING.finditer(line):
        parts.append(re.escape(line[position : match.start()]))
        value = match.group()
        if match.group("duration"):
            parts.append(re.escape("<s>"))
        elif match.group("time"):
            parts.append(f"(?:{re.escape(value)}|{NOW})")
        elif match.group("uuid"):
            parts.append(SOME_UUID)
        else:
            parts.append(f"(?:{re.escape(value)}|{TODAY})")
        position = match.end()
    parts.append(re.escape(line[position:]))
    return re.compile("".join(parts))


def output_matches(shown: list[str], actual: list[str]) -> bool:
    """Shown lines against actual (normalised) lines; `...` matches any number of lines."""

    @cache
    def match(i: int, j: int) -> bool:
        if i == len(shown):
            return j == len(actual)
        if shown[i] == "...":
            return any(match(i + 1, k) for k in range(j, len(actual) + 1))
        return (
            j < len(actual)
            and shown_pattern(shown[i].rstrip()).fullmatch(actual[j]) is not None
            and match(i + 1, j + 1)
        )

    return match(0, 0)


# --- the shell -------------------------------------------------------------------------


class DocFailure(AssertionError):
    pass


def quoted(lines: list[str] | str, limit: int = 400) -> str:
    if isinstance(lines, str):
        lines = lines.splitlines()
    if len(lines) > limit:
        cut = f"... ({len(lines) - limit} lines) ..."
        lines = [*lines[: limit // 2], cut, *lines[-limit // 2 :]]
    return "\n".join(f"    | {line}" for line in lines) if lines else "    (nothing)"


def living() -> Iterator[tuple[int, int]]:
    """(process group, session) of every process that has not exited (zombies left out)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _parent, group, session = stat[stat.rindex(")") + 2 :].split()[:4]
        if state not in {"Z", "X"}:
            yield int(group), int(session)


def session_groups(session: int) -> set[int]:
    """The process groups of every process in a session."""
    return {group for group, in_session in living() if in_session == session}


def group_alive(group: int) -> bool:
    return any(found == group for found, _ in living())


def stop_groups(groups: set[int], sig: int, wait: float) -> None:
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, sig)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(group_alive(g) for g in groups):
        time.sleep(0.1)
    for group in groups:
        if group_alive(group):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)


class Shell:
    """One bash process, fed one command at a time, as a reader pastes them."""

    def __init__(self, cwd: Path, env: dict[str, str], work: Path) -> None:
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.count = 0
        self.log = open(work / "shell.log", "wb")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            start_new_session=True,
            text=True,
        )
        self.markers: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.servers: list[int] = []  # process groups of `background` servers
        # job control, as in a terminal: `kill %1` works, each job is a process group
        self._send("set -m")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("__doctest__ "):
                self.markers.put(line.rstrip("\n"))
        self.markers.put(None)

    def _send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def _files(self, text: str) -> tuple[int, Path, Path]:
        self.count += 1
        script = self.work / f"command-{self.count}.sh"
        script.write_text(text + "\n")
        return self.count, script, self.work / f"output-{self.count}.txt"

    def _marker(self, number: int, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no answer within {timeout:.0f} s")
            try:
                marker = self.markers.get(timeout=remaining)
            except queue.Empty:
                continue
            if marker is None:
                raise EOFError("the shell exited")
            _, seen, value = marker.split(" ", 2)
            if int(seen) == number:
                return value

    def run(self, text: str, timeout: float = COMMAND_TIMEOUT) -> tuple[int | None, str]:
        """(exit status, output); the status is None when the command did not finish."""
        number, script, output = self._files(text)
        self._send(
            f". {shlex.quote(str(script))} > {shlex.quote(str(output))} 2>&1 < /dev/null;"
            f" printf '__doctest__ {number} %s\\n' \"$?\""
        )
        try:
            status: int | None = int(self._marker(number, timeout))
        except (TimeoutError, EOFError) as exc:
            status = None
            output.parent.joinpath(f"failure-{number}.txt").write_text(str(exc))
        return status, output.read_text(errors="replace") if output.exists() else ""

    def start(self, text: str, ready: str) -> tuple[bool, str]:
        """Run a foreground server command in the background; wait until `ready` answers."""
        for group in self.servers:  # the reader's Ctrl-C on the server already running
            stop_groups({group}, signal.SIGINT, wait=20.0)
        self.servers.clear()
        number, script, output = self._files(text)
        status = self.work / f"status-{number}.txt"
        self._send(
            f"{{ . {shlex.quote(str(script))} > {shlex.quote(str(output))} 2>&1 < /dev/null;"
            f" echo $? > {shlex.quote(str(status))}; }} &"
            f" printf '__doctest__ {number} %s\\n' \"$!\""
        )
        self.servers.append(int(self._marker(number, 10.0)))
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if status.exists():
                return False, f"the server exited ({status.read_text().strip()})\n" + (
                    output.read_text(errors="replace")
                )
            try:
                if httpx.get(ready, timeout=2.0, verify=False).status_code < 500:
                    return True, output.read_text(errors="replace")
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        return False, f"{ready} did not answer within {READY_TIMEOUT:.0f} s\n" + (
            output.read_text(errors="replace")
        )

    def close(self) -> None:
        """Stop everything the shell started, process group by process group."""
        session = self.process.pid
        stop_groups(session_groups(session) - {session}, signal.SIGTERM, wait=15.0)
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        stop_groups(session_groups(session), signal.SIGKILL, wait=5.0)
        self.process.wait(5)
        self.log.close()


# --- the run ---------------------------------------------------------------------------


def reader_env() -> dict[str, str]:
    env = clean_env({})
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    own_bins = {str(Path(sys.prefix) / "bin"), str(ROOT / ".venv" / "bin")}
    if "VIRTUAL_ENV" in os.environ:
        own_bins.add(str(Path(os.environ["VIRTUAL_ENV"]) / "bin"))
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p not in own_bins]
    env["PATH"] = os.pathsep.join(path)
    env.update(COLUMNS="200", NO_COLOR="1", TERM="dumb", PYTHONUNBUFFERED="1")
    return env


def copy_of_the_repository(target: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in sorted(set(filter(None, listed.split("\0")))):
        if name == ".venv" or name.startswith(".venv/"):
            continue
        source = ROOT / name
        if not source.is_file():  # deleted in the working tree
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name, follow_symlinks=False)


def port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    empty = tmp_path_factory.mktemp("docs") / "empty"
    target = empty / "statebridge"
    target.mkdir(parents=True)
    copy_of_the_repository(target)
    assert [p.name for p in empty.iterdir()] == ["statebridge"]
    return target


class Services:
    """The fresh PostgreSQL database and the Redis db of `env` annotations."""

    def __init__(self) -> None:
        self.database: str | None = None

    def values(self) -> dict[str, str]:
        if self.database is None:
            self.database = f"statebridge_docs_{uuid.uuid4().hex[:10]}"
            execute_admin(f'CREATE DATABASE "{self.database}"')
            self.flush_redis()
        return {"fresh_db": self.database}

    def flush_redis(self) -> None:
        import redis

        client = redis.Redis.from_url(f"{REDIS_BASE_URL}/{DOCS_REDIS_DB}")
        try:
            client.flushdb()  # this db only, never FLUSHALL
        finally:
            client.close()

    def close(self) -> None:
        if self.database is not None:
            try:
                execute_admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            finally:
                self.flush_redis()


@dataclass
class Tally:
    ran: list[Block] = field(default_factory=list)
    skipped: list[tuple[Block, str]] = field(default_factory=list)
    commands: int = 0

    def summary(self, path: str) -> str:
        lines = [
            f"{path}: {len(self.ran)} blocks ran ({self.commands} commands),"
            f" {len(self.skipped)} skipped"
        ]
        lines += [f"  skipped {block.where}: {reason}" for block, reason in self.skipped]
        return "\n".join(lines)


def run_block(block: Block, shell: Shell, services: Services, clock: Clock, tally: Tally) -> None:
    note = block.annotation
    placeholders = services.values() if note.env else {}  # the database, Redis flushed
    overrides = {name: value.format(**placeholders) for name, value in note.env.items()}
    assigned: set[str] = set()
    for index, command in enumerate(block.commands):
        where = f"{block.path}:{command.line} (the {block.lang} block at line {block.line})"
        last = index == len(block.commands) - 1
        if note.ready and last:
            ok, output = shell.start(command.text, note.ready)
            tally.commands += 1
            if not ok:
                raise DocFailure(
                    f"{where}: the server did not come up\n$ {command.text}\n"
                    f"output:\n{quoted(output)}"
                )
            continue
        status, output = shell.run(command.text)
        tally.commands += 1
        if status != note.exit:
            said = "did not finish" if status is None else f"exited {status}"
            raise DocFailure(
                f"{where}: the command {said}, the document expects {note.exit}\n"
                f"$ {command.text}\noutput:\n{quoted(output)}"
            )
        if command.shown is not None:
            actual = [normalise_actual(line, clock) for line in output.splitlines()]
            while actual and actual[-1] == "":
                actual.pop()
            if not output_matches(command.shown, actual):
                raise DocFailure(
                    f"{where}: the output differs from the document\n$ {command.text}\n"
                    f"shown:\n{quoted(command.shown)}\nactual:\n{quoted(output)}"
                )
        for name, value in overrides.items():
            if re.search(rf"\bexport\b[^\n;&|]*\b{name}=", command.text):
                status, output = shell.run(f"export {name}={shlex.quote(value)}")
                assert status == 0, output
                assigned.add(name)
    missing = set(overrides) - assigned
    assert not missing, f"{block.where}: `env` names {missing}, which the block never exports"


def run_document(path: str, text: str, copy: Path, tmp_path: Path) -> Tally:
    """Run one document's blocks in `copy`; everything started is stopped at the end."""
    blocks = parse_blocks(path, text)
    tally = Tally()
    taken = [port for port in PORTS if port_taken(port)]
    assert not taken, f"the documents' ports are in use: {taken}"
    clock = Clock(datetime.now(UTC))
    env = reader_env()
    shell = Shell(copy, env, tmp_path / "shell")
    services = Services()
    try:
        for block in blocks:
            note = block.annotation
            if note.skip is not None:
                tally.skipped.append((block, note.skip))
                continue
            if note.needs is not None and shutil.which(note.needs[0], path=env["PATH"]) is None:
                tally.skipped.append((block, note.needs[1]))
                continue
            run_block(block, shell, services, clock, tally)
            tally.ran.append(block)
    finally:
        print(tally.summary(path))
        try:
            shell.close()
        finally:
            services.close()
    return tally


@pytest.mark.parametrize("path", DOCUMENTS)
def test_the_document_runs_as_written(path: str, copy: Path, tmp_path: Path) -> None:
    tally = run_document(path, (copy / path).read_text(), copy, tmp_path)
    assert tally.ran, f"{path}: no block ran"
    if path in MOSTLY_RUN:
        share = len(tally.skipped) / (len(tally.ran) + len(tally.skipped))
        assert share <= MOSTLY_RUN[path], tally.summary(path)


def test_a_failure_shows_the_block_and_stops_the_servers(tmp_path: Path) -> None:
    """The harness itself: a wrong shown output is reported with the block, the command,
    the shown lines and the actual output, and the background server is stopped."""
    port = free_port()
    text = "\n".join(
        [
            "Start a server:",
            "",
            f"<!-- doc-test: background, ready http://127.0.0.1:{port}/ -->",
            "```bash",
            f"python3 -m http.server --bind 127.0.0.1 {port}",
            "```",
            "",
            "```console",
            "$ GREETING=hello",
            "$ echo $GREETING; echo world",
            "hello",
            "there",
            "```",
        ]
    )
    with pytest.raises(DocFailure) as failure:
        run_document("x.md", text, tmp_path, tmp_path / "work")
    message = str(failure.value)
    assert message.startswith("x.md:10 (the console block at line 8): the output differs")
    assert "$ echo $GREETING; echo world" in message
    assert "shown:\n    | hello\n    | there\nactual:\n    | hello\n    | world" in message
    assert not port_taken(port), "the background server outlived the failure"


def test_the_comparison_is_strict() -> None:
    clock = Clock(datetime.now(UTC))
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    actual = [
        normalise_actual(line, clock)
        for line in [
            f"Sessions at {now} into the table",
            "│ users    │        2 │ 0088fdb8d7324d7e │",
            "at 2026-11-29T14:31:00.000Z, 5 records in 0.06 s",
            f"backup-{date.today().isoformat()}.jsonl.gz",
        ]
    ]
    shown = [
        "Sessions at 2026-11-29T15:23:50.497Z into the table",
        "│ users    │        2 │ 0088fdb8d7324d7e │",
        "at 2026-11-29T14:31:00.000Z, 5 records in 0.23 s",
        "backup-2026-11-29.jsonl.gz",
    ]
    assert output_matches(shown, actual)
    assert output_matches(["...", shown[1], "..."], actual)
    assert not output_matches(shown[1:], actual)  # anchored at the first line
    assert not output_matches(shown[:3], actual)  # and at the last
    stale = [*shown[:1], "│ users    │        2 │ 01a93e9f8501cfa1 │", *shown[2:]]
    assert not output_matches(stale, actual)  # checksums are compared exactly
    fixed = [*shown[:2], "at 2026-11-29T14:32:00.000Z, 5 records in 0.06 s", shown[3]]
    assert not output_matches(fixed, actual)  # so are times that do not vary


def test_the_blocks_are_read_as_a_terminal_reads_them() -> None:
    text = "\n".join(
        [
            "<!-- doc-test: exit 1, env A=x -->",
            "```console",
            "$ echo one \\",
            "> two",
            "one two",
            "",
            "$ true",
            "```",
            "",
            "```bash",
            "# a comment",
            "cat > f <<'EOF'",
            "x",
            "EOF",
            "a \\",
            "  b   # trailing",
            "```",
        ]
    )
    blocks = parse_blocks("x.md", text)
    assert [b.lang for b in blocks] == ["console", "bash"]
    assert blocks[0].annotation.exit == 1 and blocks[0].annotation.env == {"A": "x"}
    assert [(c.line, c.text, c.shown) for c in blocks[0].commands] == [
        (3, "echo one \\\ntwo", ["one two"]),
        (7, "true", []),
    ]
    assert [(c.line, c.text) for c in blocks[1].commands] == [
        (12, "cat > f <<'EOF'\nx\nEOF"),
        (15, "a \\\n  b   # trailing"),
    ]


def test_the_documents_annotations_are_well_formed() -> None:
    """Quick, without running anything: every annotation parses, every skip has a reason."""
    for path in DOCUMENTS:
        for block in parse_blocks(path, (ROOT / path).read_text()):
            assert block.annotation.skip is None or block.annotation.skip.strip(), block.where
