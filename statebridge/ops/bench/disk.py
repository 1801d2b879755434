"""Disk stalls during a run, read from /proc/diskstats (Linux).

A write the server acknowledges is committed to PostgreSQL first, and a commit waits for
the WAL to reach the disk. So when the disk holds its requests, every write in flight
waits with it, and the run's tail latency shows the disk, not the server. On a virtual
machine that happens now and then: one write outstanding for far longer than usual, nothing
else completing meanwhile (docs/perf-history.md, "Where the mix's stalls come from").

`Watch` samples the device every few milliseconds during a run and keeps the longest
stretch in which the device had requests in flight and completed none of them (reads,
writes, discards and flushes alike). It is a lower bound, to within the sampling interval.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

DISKSTATS = Path("/proc/diskstats")
INTERVAL = 0.005  # seconds between samples
COMPLETED = (0, 4, 11, 15)  # reads, writes, discards, flushes (in the fields after the name)
IN_FLIGHT = 8


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic()
    completed: int  # requests completed since boot
    in_flight: int  # requests in flight now


def devices(text: str | None = None) -> list[str]:
    """The block devices /proc/diskstats knows (e.g. vda, sda, nvme0n1)."""
    if text is None:
        text = DISKSTATS.read_text()
    return [line.split()[2] for line in text.splitlines() if len(line.split()) > 2]


def real_devices(names: list[str]) -> list[str]:
    """`names` without the virtual ones (loop devices, RAM disks)."""
    return [name for name in names if not name.startswith(("loop", "ram", "zram"))]


def parse(text: str, device: str, at: float) -> Sample | None:
    """The device's line of /proc/diskstats as a Sample; None if the device is not there."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) > 3 + IN_FLIGHT and parts[2] == device:
            fields = [int(value) for value in parts[3:]]
            completed = sum(fields[index] for index in COMPLETED if index < len(fields))
            return Sample(at=at, completed=completed, in_flight=fields[IN_FLIGHT])
    return None


def longest_stall(samples: list[Sample]) -> float:
    """Longest time, in ms, from a sample with requests in flight to the last later sample
    at which none of them (nor anything else) had completed and some were still in flight."""
    longest = 0.0
    start: Sample | None = None
    for sample in samples:
        if start is not None and sample.completed == start.completed and sample.in_flight > 0:
            longest = max(longest, sample.at - start.at)
            continue
        start = sample if sample.in_flight > 0 else None
    return round(1000 * longest, 1)


class Watch:
    """Sample one device in a thread while the `with` block runs; `stall_ms` afterwards."""

    def __init__(self, device: str, interval: float = INTERVAL, source: Path = DISKSTATS) -> None:
        self.device = device
        self.interval = interval
        self.source = source
        self.samples: list[Sample] = []
        self.stall_ms: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sample = parse(self.source.read_text(), self.device, time.monotonic())
            except OSError:
                return
            if sample is None:
                return
            self.samples.append(sample)
            self._stop.wait(self.interval)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(5)
        self.stall_ms = longest_stall(self.samples) if len(self.samples) > 1 else None
