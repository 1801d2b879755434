"""Printing and saving a benchmark: the side-by-side table, JSON, and a PNG chart."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import orjson

from statebridge.ops.bench.model import Result


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {"nproc": os.cpu_count(), "python": platform.python_version()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
        info["loadavg_at_start"] = [round(value, 2) for value in os.getloadavg()]
    except OSError:
        pass
    return info


def typical(results: list[Result]) -> Result:
    """The run with the median throughput (of one scenario and target over its rounds)."""
    ordered = sorted(results, key=lambda result: result.rps)
    return ordered[(len(ordered) - 1) // 2]


def summarise(results: list[Result], names: list[str]) -> list[dict[str, Any]]:
    """One row per scenario: each target's typical run, and target/baseline ratios."""
    rows: list[dict[str, Any]] = []
    for scenario in dict.fromkeys(result.scenario for result in results):
        row: dict[str, Any] = {"scenario": scenario}
        for name in names:
            runs = [r for r in results if r.scenario == scenario and r.target == name]
            if runs:
                best = typical(runs)
                row[name] = best.as_dict()
                row[name]["rps_rounds"] = [round(run.rps, 1) for run in runs]
        if len(names) == 2 and names[0] in row and names[1] in row:
            mine, theirs = row[names[0]], row[names[1]]
            row["ratio"] = round(mine["rps"] / theirs["rps"], 2) if theirs["rps"] else None
            row["p99_no_worse"] = mine["p99_ms"] <= theirs["p99_ms"]
        rows.append(row)
    return rows


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def kilobytes(size: int | None) -> str:
    """An answer's size on the wire: KB with two decimals below 10 KB, whole KB above."""
    if size is None:
        return "-"
    return fmt(size / 1000, 2 if size < 10_000 else 0)


def machine_busy(data: dict[str, Any]) -> str:
    busy = data.get("machine_busy_percent")
    return "-" if busy is None else f"{busy:.0f}%"


def slowest_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by ratio, lowest first (those without one last); as run when there is none."""
    if not any(row.get("ratio") is not None for row in rows):
        return rows
    return sorted(rows, key=lambda row: (row.get("ratio") is None, row.get("ratio") or 0.0))


def rate(data: dict[str, Any]) -> str:
    """req/s, and a flow case's passes per second beside it."""
    text = fmt(data["rps"], 0)
    if data.get("flows_per_s") is not None:
        text += f" ({fmt(data['flows_per_s'], 0)} {data.get('flow_unit') or 'flows'}/s)"
    return text


def table(rows: list[dict[str, Any]], names: list[str]) -> str:
    """A Markdown table: it reads in a terminal and pastes into docs/benchmarks.md. Against a
    baseline, the lowest ratio comes first. The disk column is there when a disk was watched
    (--disk)."""
    rows = slowest_first(rows)
    watched = any(
        row.get(name, {}).get("disk_stall_ms") is not None for row in rows for name in names
    )
    counted = any(
        row.get(name, {}).get("connections_opened") is not None for row in rows for name in names
    )
    header = (
        "| scenario | server | req/s | p50 ms | p90 ms | p99 ms | errors | success "
        "| KB/answer | CPU µs/req | machine busy |"
        + (" disk stall ms |" if watched else "")
        + (" conns opened |" if counted else "")
        + " ratio |"
    )
    lines = [header, "|---" * (header.count("|") - 1) + "|"]
    for row in rows:
        for index, name in enumerate(names):
            data = row.get(name)
            if data is None:
                continue
            ratio = fmt(row.get("ratio"), 2) + "x" if index == 0 and "ratio" in row else ""
            lines.append(
                f"| {row['scenario'] if index == 0 else ''} | {name} | {rate(data)} | "
                f"{fmt(data['p50_ms'], 2)} | {fmt(data['p90_ms'], 2)} | {fmt(data['p99_ms'], 2)} | "
                f"{data['errors']} | {100 * data['success_rate']:.2f}% | "
                f"{kilobytes(data.get('bytes_per_answer'))} | "
                f"{fmt(data.get('cpu_us_per_request'), 0)} | {machine_busy(data)} | "
                + (f"{fmt(data.get('disk_stall_ms'), 0)} | " if watched else "")
                + (f"{fmt(data.get('connections_opened'), 0)} | " if counted else "")
                + f"{ratio} |"
            )
    return "\n".join(lines)


def memory_table(memory: dict[str, Any]) -> str:
    lines = [
        "| server | seconds | RSS after warm-up MiB | RSS at end MiB | max MiB | growth |",
        "|---|---|---|---|---|---|",
    ]
    for name, data in memory.items():
        lines.append(
            f"| {name} | {data['seconds']} | {data['rss_after_warmup'] / 2**20:.1f} | "
            f"{data['rss_end'] / 2**20:.1f} | {data['rss_max'] / 2**20:.1f} | "
            f"{data['growth_percent']:+.1f}% |"
        )
    return "\n".join(lines)


def save_json(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))


def save_chart(path: Path, rows: list[dict[str, Any]], names: list[str], title: str) -> bool:
    """A PNG with req/s and p99 side by side, in the table's order; False when matplotlib is
    not installed."""
    rows = slowest_first(rows)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    scenarios = [
        row["scenario"].replace("mix: ", "mix:\n")
        + (f"\n{row['ratio']:.2f}x" if row.get("ratio") is not None else "")
        for row in rows
    ]
    many = len(rows) > 8  # every route: wider, labels turned further
    figure, (left, right) = plt.subplots(1, 2, figsize=(max(13, 1.1 * len(rows)), 5.2 + many))
    width = 0.8 / max(1, len(names))
    for index, name in enumerate(names):
        xs = [i + (index - (len(names) - 1) / 2) * width for i in range(len(rows))]
        rps = [row.get(name, {}).get("rps", 0) for row in rows]
        p99 = [row.get(name, {}).get("p99_ms", 0) for row in rows]
        bars = left.bar(xs, rps, width, label=name)
        left.bar_label(bars, labels=[f"{value:,.0f}" for value in rps], fontsize=7)
        right.bar(xs, p99, width, label=name)
    for axis, label in ((left, "requests per second (higher is better)"),
                        (right, "p99 latency, ms (lower is better)")):  # fmt: skip
        axis.set_xticks(
            range(len(rows)), scenarios, fontsize=8, rotation=60 if many else 15,
            ha="right" if many else "center",
        )  # fmt: skip
        axis.set_ylabel(label)
        axis.legend()
        axis.grid(axis="y", alpha=0.3)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
