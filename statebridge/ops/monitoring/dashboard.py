"""The Grafana dashboard of deploy/monitoring, built with grafana-foundation-sdk.

    python -m statebridge.ops.monitoring.dashboard deploy/monitoring/grafana/statebridge.json
    python -m statebridge.ops.monitoring.dashboard --check \
        deploy/monitoring/grafana/statebridge.json

The first writes the file, the second fails when the file differs from what this module
builds (a test runs it). Every panel reads the job `statebridge` of the Prometheus that
deploy/monitoring/prometheus.yml configures, through the recording rules of
deploy/monitoring/rules where one exists; the data source is chosen when importing.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, GridPos

UID = "statebridge-overview"
JOB = 'job="statebridge"'
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")


@dataclass(frozen=True)
class Panel:
    title: str
    expr: str
    legend: str
    unit: str
    description: str
    single: bool = False  # one number (a stat panel), not a time series
    width: int = 8


PANELS = (
    Panel(
        "Instances up",
        f"sum(up{{{JOB}}})",
        "up",
        "none",
        "Instances Prometheus scraped at its last attempt (StatebridgeInstanceDown).",
        single=True,
        width=6,
    ),
    Panel(
        "Dependencies answering",
        f"min by (dependency) (statebridge_dependency_up{{{JOB}}})",
        "{{dependency}}",
        "none",
        "1 when every instance reached the dependency at its last scrape (StatebridgeNotReady).",
        single=True,
        width=6,
    ),
    Panel(
        "Time since the last backup",
        f"time() - max(statebridge_last_backup_timestamp_seconds{{{JOB}}})",
        "age",
        "s",
        "Since the last successful `statebridge backup` (StatebridgeBackupTooOld).",
        single=True,
        width=6,
    ),
    Panel(
        "Active sessions",
        f"max(statebridge_active_sessions{{{JOB}}})",
        "sessions",
        "none",
        "Live sessions across all instances.",
        single=True,
        width=6,
    ),
    Panel(
        "Requests per second by status",
        f"job_status:statebridge_http_requests:rate5m{{{JOB}}}",
        "{{status}}",
        "reqps",
        "Answered requests, all instances, by HTTP status (5-minute rate).",
    ),
    Panel(
        "5xx ratio (availability SLI, 5 min)",
        f"statebridge:slo_availability_errors:ratio_rate5m{{{JOB}}}",
        "5xx ratio",
        "percentunit",
        "Requests answered 5xx (probes and /metrics left out). SLO: 99.9 % non-5xx "
        "(StatebridgeHighErrorRatio above 5 %).",
    ),
    Panel(
        "Availability error budget burn rate (1 h)",
        f"statebridge:slo_availability_errors:ratio_rate1h{{{JOB}}} / 0.001",
        "burn rate",
        "none",
        "1 spends the 30-day budget in 30 days; the fast-burn alert pages above 14.4.",
    ),
    Panel(
        "Stateful requests over 100 ms (latency SLI, 5 min)",
        f"statebridge:slo_latency_slow:ratio_rate5m{{{JOB}}}",
        "slower than 100 ms",
        "percentunit",
        "Stateful requests answered in more than 100 ms. SLO: 99 % within 100 ms.",
    ),
    Panel(
        "Latency error budget burn rate (1 h)",
        f"statebridge:slo_latency_slow:ratio_rate1h{{{JOB}}} / 0.01",
        "burn rate",
        "none",
        "1 spends the 30-day budget in 30 days; the fast-burn alert pages above 14.4.",
    ),
    Panel(
        "p99 latency by route",
        f"job_route:statebridge_http_request_duration_seconds:p99_5m{{{JOB}}}",
        "{{route}}",
        "s",
        "The 99th percentile of the response time, by route template (5 minutes).",
    ),
    Panel(
        "Session reads served from PostgreSQL",
        f"sum by (instance, reason) (rate(statebridge_session_fallback_reads_total{{{JOB}}}[1m]))",
        "{{instance}} {{reason}}",
        "reqps",
        "Above 0: Redis is unreachable (unavailable) or lost its data (missed) "
        "(StatebridgeSessionsFromPostgres).",
    ),
    Panel(
        "Store errors per second",
        f"sum by (store) (rate(statebridge_store_errors_total{{{JOB}}}[5m]))",
        "{{store}}",
        "reqps",
        "Failed Redis calls (served from PostgreSQL) and requests answered 503.",
    ),
    Panel(
        "Database pools in use",
        f"instance_pool:statebridge_db_pool_connections:saturation{{{JOB}}}",
        "{{instance}} {{pool}}",
        "percentunit",
        "Connections handed out over the pool's size (StatebridgeDatabasePoolSaturated "
        "above 90 %).",
    ),
    Panel(
        "Worker restarts (15 min)",
        f"sum by (instance) (increase(statebridge_worker_restarts_total{{{JOB}}}[15m]))",
        "{{instance}}",
        "none",
        "Workers that died and were started again (StatebridgeWorkerRestarts).",
    ),
    Panel(
        "Resident memory",
        f"process_resident_memory_bytes{{{JOB}}}",
        "{{instance}}",
        "bytes",
        "The memory of the worker that answered each scrape.",
    ),
)


def query(panel: Panel) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(panel.expr).legend_format(panel.legend).ref_id("A")


def build_panel(panel: Panel, x: int, y: int) -> stat.Panel | timeseries.Panel:
    built: stat.Panel | timeseries.Panel
    built = stat.Panel() if panel.single else timeseries.Panel()
    return (
        built.title(panel.title)
        .description(panel.description)
        .datasource(DATASOURCE)
        .unit(panel.unit)
        .with_target(query(panel))
        .grid_pos(GridPos(h=4 if panel.single else 8, w=panel.width, x=x, y=y))
    )


def build() -> dict[str, object]:
    board = (
        dashboard.Dashboard("statebridge")
        .uid(UID)
        .tags(["statebridge"])
        .description("statebridge: availability, latency, sessions, pools, backups")
        .time("now-3h", "now")
        .refresh("30s")
        .timezone("browser")
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
    )
    x = y = height = 0
    for panel in PANELS:
        if x + panel.width > 24:
            x, y, height = 0, y + height, 0
        board = board.with_panel(build_panel(panel, x, y))
        x += panel.width
        height = max(height, 4 if panel.single else 8)
    built: dict[str, object] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return built


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [arg for arg in argv if arg != "--check"]
    if len(paths) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(paths[0])
    text = render()
    if check:
        if not path.exists() or path.read_text() != text:
            print(f"{path} differs from what the dashboard module builds: regenerate it with")
            print(f"  python -m statebridge.ops.monitoring.dashboard {path}")
            return 1
        return 0
    path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
