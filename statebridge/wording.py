"""Counts in words for the command-line output: `1 instance`, `2 instances`."""

from __future__ import annotations


def counted(count: int, word: str, plural: str | None = None, *, grouped: bool = False) -> str:
    """`count word`, the word in the plural unless the count is one.

    `plural` for a word that does not just take an `s` (or for phrases: `existing rows`);
    `grouped` writes thousands with commas (`12,345 users`)."""
    number = f"{count:,}" if grouped else str(count)
    return f"{number} {word if count == 1 else plural or word + 's'}"
