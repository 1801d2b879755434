"""A checkout stands alone: a test that opens a file beside it fails at once."""

from __future__ import annotations

import os

from tests.support.recordings import ROOT

# What stood beside the checkout when the run began (a sibling folder such as a data
# directory). pytest's own temporary root is left out, for a checkout that sits in /tmp.
BESIDE = tuple(
    os.path.realpath(entry)
    for entry in ROOT.parent.iterdir()
    if entry != ROOT and not entry.name.startswith("pytest-of-")
)


def outside_the_repository(path: str) -> bool:
    """True for a path beside the checkout rather than in it.

    The only outside folder a test may read is an explicitly opted-in PHASE1_DIR."""
    resolved = os.path.realpath(path)
    opted_in = os.environ.get("PHASE1_DIR")
    if opted_in and resolved.startswith(os.path.realpath(opted_in)):
        return False
    return any(resolved == entry or resolved.startswith(entry + os.sep) for entry in BESIDE)


def guard_opens(event: str, args: tuple[object, ...]) -> None:
    if event == "open" and args and isinstance(args[0], str | bytes | os.PathLike):
        path = os.fsdecode(args[0])
        if outside_the_repository(path):
            raise PermissionError(f"a test opened {path}, outside the repository")
