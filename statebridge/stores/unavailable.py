"""The one error every store raises when its backend cannot be reached."""

from __future__ import annotations


class StoreUnavailable(Exception):
    """The store cannot be reached; routes answer 503, never 500."""
