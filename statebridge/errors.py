"""Errors shared by the command line and the server (kept free of heavy imports)."""

from __future__ import annotations


class StartupError(Exception):
    """A configuration problem worth one clear line, not a traceback."""
