"""The checkout stands alone: nothing in it reaches for files beside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support import guard
from tests.support.recordings import PHASE1, ROOT

# a path that climbs out of the checkout, written in any of the ways the code here would
REACHING_OUT = re.compile(r"\.\./shared|parents\[2\]|parent\.parent\.parent|[\"']shared[\"']\s*/")


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [ROOT / name for name in listed]


def test_no_file_in_the_repository_reaches_beside_it() -> None:
    offenders = []
    for path in tracked_files():
        if path.suffix not in {".py", ".sh", ".md", ".toml", ".yml", ".yaml", ".cfg", ""}:
            continue
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if REACHING_OUT.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_phase1_recordings_are_in_the_repository() -> None:
    names = sorted(path.name for path in PHASE1.glob("*.json"))
    assert names == [
        "phase1-export.json",
        "phase1-sessions.json",
        "products.json",
        "server-config.json",
        "transcript.json",
        "users.json",
    ]
    assert (PHASE1 / "README.md").read_text().count("Provenance") == 1


def test_opening_a_file_beside_the_repository_fails_the_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"  # stands for a folder beside the checkout
    (shared / "phase1").mkdir(parents=True)
    (shared / "phase1" / "users.json").write_text("[]")
    monkeypatch.setattr(guard, "BESIDE", (str(shared),))
    assert guard.outside_the_repository(str(shared / "phase1" / "users.json"))
    assert not guard.outside_the_repository(str(PHASE1 / "users.json"))
    assert not guard.outside_the_repository(str(tmp_path / "elsewhere"))
    with pytest.raises(PermissionError, match="outside the repository"):
        open(shared / "phase1" / "users.json")  # noqa: SIM115 - refused before anything is read
