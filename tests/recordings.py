"""Where the tests find Phase 1's recordings: inside the repository, never beside it."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHASE1 = ROOT / "examples" / "phase1"
TRANSCRIPT = PHASE1 / "transcript.json"
