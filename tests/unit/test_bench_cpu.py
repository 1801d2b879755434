"""The benchmark's CPU accounting (statebridge/ops/bench/cpu.py), read from a real /proc."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from statebridge.ops.bench import cpu

pytestmark = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux /proc")

# A parent that does nothing itself and a child that burns half a second of CPU, then says
# so and stays alive (a reaped child's time would move to the parent's own counters).
FAMILY = textwrap.dedent(
    """
    import subprocess, sys
    child = subprocess.Popen([sys.executable, "-c", '''
    import sys, time
    while time.process_time() < 0.5:
        pass
    print("burnt", flush=True)
    time.sleep(60)
    '''], stdout=sys.stdout)
    child.wait()
    """
)


@pytest.fixture
def family() -> Iterator[subprocess.Popen[str]]:
    parent = subprocess.Popen([sys.executable, "-c", FAMILY], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "burnt"
        yield parent
    finally:
        for pid in cpu.tree(parent.pid)[1:]:
            subprocess.run(["kill", str(pid)], check=False)
        parent.kill()
        parent.wait(10)


def test_a_pid_counts_the_cpu_of_the_processes_below_it(
    family: subprocess.Popen[str],
) -> None:
    below = cpu.tree(family.pid)
    assert below[0] == family.pid and len(below) == 2
    alone = cpu.read((family.pid,)).total
    whole = cpu.read(tuple(below)).total
    child_only = cpu.read((below[1],)).total
    assert child_only is not None and child_only >= 0.45
    # the parent's PID stands for both; the child is counted once, however it is named
    assert whole is not None and whole >= child_only
    assert alone == whole


def test_nothing_to_read_is_none_not_zero(tmp_path: Path) -> None:
    assert cpu.read(()).total is None
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert cpu.read((gone.pid,)).total is None


def test_machine_busy_share() -> None:
    first = cpu.machine_times()
    assert first is not None and 0 <= first.busy <= first.total
    before = cpu.MachineTimes(busy=100, total=1000)
    assert cpu.busy_percent(before, cpu.MachineTimes(busy=250, total=1200)) == 75.0
    assert cpu.busy_percent(before, cpu.MachineTimes(busy=100, total=1400)) == 0.0
    assert cpu.busy_percent(before, before) is None  # no time passed: no share
    assert cpu.busy_percent(None, first) is None


def test_each_pid_is_also_read_on_its_own(family: subprocess.Popen[str]) -> None:
    child = cpu.tree(family.pid)[1]
    before = cpu.read((family.pid, child, family.pid))
    assert list(before.by_root) == [family.pid, child]  # once each, in the order given
    assert before.by_root[family.pid] >= before.by_root[child] >= 0.45  # the tree holds it
    # the child is in both trees and counted once; one pass, so the sums agree exactly
    assert before.total == before.by_root[family.pid]
    after = cpu.Reading(
        total=(before.total or 0) + 0.25,
        by_root={pid: seconds + 0.25 for pid, seconds in before.by_root.items()},
    )
    total, per_pid = cpu.spent(before, after)
    assert total == pytest.approx(0.25) and per_pid == {family.pid: 0.25, child: 0.25}
    gone = cpu.Reading(total=None, by_root={child: after.by_root[child]})
    assert cpu.spent(before, gone) == (None, {child: 0.25})  # the parent went away
