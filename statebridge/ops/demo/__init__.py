"""`statebridge demo` (Phase 1's three demo scripts, replayed) and `statebridge check`."""
