"""`statebridge bench --disk`: the longest stretch a block device held requests and completed
none, from /proc/diskstats."""

from __future__ import annotations

import time
from pathlib import Path

from statebridge.ops.bench.disk import Sample, Watch, devices, longest_stall, parse, real_devices

# two lines as a 6.x kernel writes them: 17 fields after the name (flushes last)
STATS = (
    "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    " 254       0 vda 100 1 800 50 200 3 1600 90 2 140 160 5 0 40 1 7 3\n"
)


def test_a_line_becomes_completed_requests_and_requests_in_flight() -> None:
    sample = parse(STATS, "vda", at=1.0)
    assert sample == Sample(at=1.0, completed=100 + 200 + 5 + 7, in_flight=2)
    assert parse(STATS, "sdz", at=1.0) is None
    assert devices(STATS) == ["loop0", "vda"]
    assert real_devices(devices(STATS)) == ["vda"]


def test_an_older_kernels_eleven_fields_still_parse() -> None:
    line = "   8       0 sda 10 0 80 5 20 0 160 9 1 14 16\n"
    assert parse(line, "sda", at=0.0) == Sample(at=0.0, completed=30, in_flight=1)


def samples(*points: tuple[float, int, int]) -> list[Sample]:
    return [Sample(at, completed, in_flight) for at, completed, in_flight in points]


def test_only_time_with_requests_waiting_and_none_completed_counts() -> None:
    assert longest_stall(samples((0.00, 5, 1), (0.05, 6, 1), (0.10, 7, 1))) == 0.0  # busy
    assert longest_stall(samples((0.00, 5, 0), (0.50, 5, 0), (0.90, 5, 0))) == 0.0  # idle
    stalled = samples(
        (0.00, 5, 1),
        (0.01, 6, 1),  # a completion: a stall can start here
        (0.09, 6, 1),
        (0.18, 6, 1),  # 170 ms with one request in flight and none completed
        (0.19, 7, 0),
        (0.30, 7, 1),
        (0.35, 7, 1),  # 50 ms
        (0.40, 8, 1),
    )
    assert longest_stall(stalled) == 170.0


def test_the_watch_samples_a_device_while_it_runs(tmp_path: Path) -> None:
    """A stats file rewritten by hand: a request held 300 ms, then completed."""
    source = tmp_path / "diskstats"

    def write(line: str) -> None:  # whole, so the watch never reads half a file
        (tmp_path / "next").write_text(line)
        (tmp_path / "next").replace(source)

    write(" 254 0 vda 1 0 0 0 1 0 0 0 0 0 0\n")
    with Watch("vda", interval=0.005, source=source) as watch:
        time.sleep(0.05)
        write(" 254 0 vda 1 0 0 0 1 0 0 0 1 0 0\n")  # one write in flight
        time.sleep(0.3)
        write(" 254 0 vda 1 0 0 0 2 0 0 0 0 0 0\n")  # it completed
        time.sleep(0.05)
    assert watch.stall_ms is not None
    assert 250 <= watch.stall_ms <= 400, watch.stall_ms


def test_the_watch_reads_the_real_file_for_a_real_device() -> None:
    device = real_devices(devices())[0]
    with Watch(device, interval=0.005) as watch:
        time.sleep(0.1)
    assert len(watch.samples) > 1
    counts = [sample.completed for sample in watch.samples]
    assert counts == sorted(counts)  # completions since boot only grow
    assert watch.stall_ms is not None and watch.stall_ms >= 0
