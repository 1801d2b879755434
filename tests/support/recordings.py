"""Where the tests find Phase 1's recordings: inside the repository, never beside it."""

from __future__ import annotations

from pathlib import Path

# the checkout's root: the folder that holds pyproject.toml, above this file
ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
PHASE1 = ROOT / "examples" / "phase1"
TRANSCRIPT = PHASE1 / "transcript.json"
