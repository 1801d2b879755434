"""The `statebridge bench` command (registered in statebridge/cli/main.py); imports lazily."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from statebridge.cli.support import print_json
from statebridge.wording import counted


class Engine(StrEnum):
    auto = "auto"
    wrk = "wrk"
    python = "python"


def bench(
    legacy_json_path: Annotated[Path | None, typer.Argument(hidden=True, metavar="")] = None,
    url: Annotated[
        str, typer.Option(help="statebridge's stateless base URL (its combined URL works too)")
    ] = "http://127.0.0.1:8000",
    stateful_url: Annotated[
        str | None, typer.Option(help="statebridge's stateful base URL [default: URL/api/stateful]")
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(help="Another server to run alternately, e.g. Phase 1's stateless URL"),
    ] = None,
    baseline_stateful_url: Annotated[
        str | None,
        typer.Option(help="The baseline's stateful URL [default: BASELINE/api/stateful]"),
    ] = None,
    name: Annotated[str, typer.Option(help="Label of the first server")] = "statebridge",
    baseline_name: Annotated[str, typer.Option(help="Label of the baseline")] = "baseline",
    duration: Annotated[int, typer.Option(min=1, help="Seconds of each measured run")] = 10,
    warmup: Annotated[int, typer.Option(min=0, help="Seconds of load before each run")] = 2,
    connections: Annotated[int, typer.Option(min=1, help="Concurrent connections")] = 50,
    threads: Annotated[int, typer.Option(min=1, help="wrk threads")] = 1,
    rounds: Annotated[int, typer.Option(min=1, help="Runs per scenario and server")] = 1,
    sessions: Annotated[
        int,
        typer.Option(
            min=1,
            help="Live sessions for the stateful cases, created first (concurrently) on each "
            "server and taken in turn by the requests",
        ),
    ] = 50,
    cases: Annotated[
        str | None,
        typer.Option(
            help="What to run: `all` (every route of both APIs, then the session lifecycle) "
            "or case names and globs, comma-separated (e.g. 'stateful *,session lifecycle') "
            "[default: the GETs of --endpoints, then the stateful mix]"
        ),
    ] = None,
    endpoints: Annotated[
        str | None,
        typer.Option(
            help="Without --cases: stateless GETs, comma-separated "
            "[default: /health,/info,/users,/products]"
        ),
    ] = None,
    stateful: Annotated[
        bool,
        typer.Option(
            "--stateful/--no-stateful",
            help="Run the stateful mix (with --cases: the stateful cases)",
        ),
    ] = True,
    engine: Annotated[Engine, typer.Option(help="Load generator")] = Engine.auto,
    soak: Annotated[
        int, typer.Option(min=0, help="Then N seconds of the mix while RSS is sampled (0: off)")
    ] = 0,
    pid: Annotated[
        list[int] | None,
        typer.Option(
            help="Local PID of the first server: its CPU per run and per request, child "
            "processes included; repeat it to add another (e.g. nginx's master)"
        ),
    ] = None,
    baseline_pid: Annotated[
        list[int] | None, typer.Option(help="Local PID of the baseline (repeatable)")
    ] = None,
    out: Annotated[Path, typer.Option(help="Where to write the results (JSON)")] = Path(
        "bench.json"
    ),
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the results as one JSON document on standard output (the tables and "
            "notices go to standard error); the file is written all the same",
        ),
    ] = False,
    chart: Annotated[
        Path | None, typer.Option(help="Write a PNG chart (needs the `bench` extra: matplotlib)")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds before a request counts as failed")] = 5.0,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Accept any TLS certificate (self-signed nginx)")
    ] = False,
    disk: Annotated[
        str | None,
        typer.Option(
            help="A block device as /proc/diskstats names it (e.g. vda; `findmnt -no SOURCE -T "
            "/var/lib/postgresql` tells PostgreSQL's): each run's longest stretch with "
            "requests in flight and none completed, a column of its own"
        ),
    ] = None,
) -> None:
    """Load-test statebridge (and, alternately, a baseline such as Phase 1): req/s, p50/p90/p99,
    errors and the ratio, as a table, JSON and optionally a PNG chart.

    Phase 1 has two ports: give both, e.g. `--url http://127.0.0.1:3001 --stateful-url
    http://127.0.0.1:3002 --baseline http://127.0.0.1:4001 --baseline-stateful-url
    http://127.0.0.1:4002`. `--cases all` runs every route of both APIs and the session
    lifecycle; the stateful cases' sessions are created first (POST /session). Load goes
    only where you point it: use loopback or your own hosts.
    """
    from statebridge.ops.bench.cases import DEFAULT_ENDPOINTS, select
    from statebridge.ops.bench.model import Target
    from statebridge.ops.bench.report import memory_table, save_chart, save_json, table
    from statebridge.ops.bench.run import Options, benchmark

    if legacy_json_path is not None:  # `--json PATH`, the spelling before --out
        if not as_json:
            raise typer.BadParameter(f"unexpected argument {str(legacy_json_path)!r}")
        typer.echo("statebridge: --json PATH is deprecated; use --out PATH", err=True)
        out, as_json = legacy_json_path, False
    json_path = out

    def base(value: str) -> str:
        return value.rstrip("/")

    targets = [
        Target(name, base(url), base(stateful_url or f"{base(url)}/api/stateful"), tuple(pid or ()))
    ]
    if baseline:
        fallback = f"{base(baseline)}/api/stateful"
        targets.append(
            Target(
                baseline_name,
                base(baseline),
                base(baseline_stateful_url or fallback),
                tuple(baseline_pid or ()),
            )
        )
    if len({target.name for target in targets}) != len(targets):
        raise typer.BadParameter("--name and --baseline-name must differ")
    if disk is not None:
        disk = check_disk(disk)
    if cases is not None and endpoints is not None:
        raise typer.BadParameter("give --cases or --endpoints, not both")
    chosen = None
    if cases is not None:
        try:
            chosen = tuple(select(cases))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--cases") from None
    paths: tuple[str, ...] = DEFAULT_ENDPOINTS
    if endpoints is not None:
        paths = tuple(
            "/" + part.strip().lstrip("/") for part in endpoints.split(",") if part.strip()
        )
    options = Options(
        seconds=duration,
        warmup=warmup,
        connections=connections,
        threads=threads,
        rounds=rounds,
        sessions=sessions,
        endpoints=paths,
        stateful=stateful,
        cases=chosen,
        engine=engine.value,
        timeout=timeout,
        insecure=insecure,
        soak=soak,
        disk=disk,
    )

    def say(line: str) -> None:
        typer.echo(line, err=True)

    try:
        report = benchmark(targets, options, say)
    except Exception as exc:  # unreachable server, wrk missing, bad answers: one clear line
        typer.echo(f"statebridge bench: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
    names = [target.name for target in targets]
    typer.echo(
        f"\nengine: {report['engine']}; {counted(connections, 'connection')}, {duration} s per run",
        err=as_json,
    )
    typer.echo(table(report["summary"], names), err=as_json)
    if report["memory"]:
        typer.echo("\n" + memory_table(report["memory"]), err=as_json)
    save_json(json_path, report)
    typer.echo(f"\nwrote {json_path}", err=as_json)
    if chart is not None:
        machine = report["machine"]
        title = (
            f"{' vs '.join(names)}: {counted(connections, 'connection')}, {report['engine']}; "
            f"{machine.get('nproc')} CPUs ({machine.get('cpu', '?')})"
        )
        if save_chart(chart, report["summary"], names, title):
            typer.echo(f"wrote {chart}", err=as_json)
        else:
            typer.echo(
                "no chart: matplotlib is missing (pip install 'statebridge[bench]')", err=True
            )
    if as_json:
        print_json(report)
    sys.stdout.flush()


def check_disk(name: str) -> str:
    """The device name as /proc/diskstats has it (a leading /dev/ is dropped), or a clear error."""
    from statebridge.ops.bench.disk import devices, real_devices

    device = name.removeprefix("/dev/")
    try:
        known = devices()
    except OSError:
        raise typer.BadParameter("/proc/diskstats cannot be read (Linux only)") from None
    if device not in known:
        real = ", ".join(real_devices(known))
        raise typer.BadParameter(f"no block device {device!r}; /proc/diskstats has: {real}")
    return device


def bench_floor(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default)")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on")] = 5301,
) -> None:
    """Serve the floor: a bare app on statebridge's own stack (Granian, asyncpg, redis-py,
    batched calls) whose routes /http, /redis, /postgres, /save and /write do the least a
    request can do, to measure with `statebridge bench --endpoints` beside statebridge's routes
    (docs/benchmarks.md, "The floor"). Needs DATABASE_URL (PostgreSQL) and REDIS_URL; runs
    until stopped and then removes its table and keys."""
    import os

    from statebridge.cli.support import fail, load_settings
    from statebridge.ops.bench.floor import NEEDS, granian_command, has_services

    if not has_services(load_settings()):
        fail(NEEDS)
    command = granian_command(host, port)
    sys.stdout.flush()
    os.execv(command[0], command)  # the same process id: `--pid` finds it
