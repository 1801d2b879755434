"""Streaming reads of Phase 1's JSON files: one record at a time, never the whole file.

Phase 1 writes its files with `JSON.stringify`, whose numbers are the shortest text that
round-trips a double, exactly what Python's `repr(float)` prints, so parsing numbers as
floats loses nothing that Phase 1 had.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import ijson  # type: ignore[import-untyped]

EXPORT_KEYS = frozenset({"users", "products", "sessions", "carts", "requestCount", "exportedAt"})


class SourceError(Exception):
    """An input file that cannot be read as what it claims to be; one line for the user."""


class CountingReader:
    """A binary file that reports how many bytes were read, for a progress bar."""

    def __init__(self, raw: IO[bytes], on_read: Callable[[int], None] | None = None) -> None:
        self.raw = raw
        self.on_read = on_read

    def read(self, size: int = -1) -> bytes:
        chunk = self.raw.read(size)
        if self.on_read is not None and chunk:
            self.on_read(len(chunk))
        return chunk

    def __iter__(self) -> Iterator[bytes]:
        for line in self.raw:
            if self.on_read is not None:
                self.on_read(len(line))
            yield line


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def file_size(path: Path) -> int:
    return path.stat().st_size


@contextmanager
def open_binary(path: Path, on_read: Callable[[int], None] | None = None) -> Iterator[IO[bytes]]:
    """Open for reading; `.gz` files are decompressed (progress counts compressed bytes)."""
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise SourceError(f"cannot open {path}: {exc.strerror}") from None
    with raw:
        counted = CountingReader(raw, on_read)
        if path.suffix == ".gz":
            with gzip.GzipFile(fileobj=cast(Any, counted), mode="rb") as unzipped:
                yield cast(IO[bytes], unzipped)
        else:
            yield cast(IO[bytes], counted)


@dataclass(frozen=True)
class ArraySource:
    """The records of one JSON array inside a file, found by an ijson prefix.

    `label` names a record's position for humans: `users.json[3]`, `mockData.users[3]`."""

    path: Path
    prefix: str
    label: str

    def where(self, position: int) -> str:
        return f"{self.label}[{position}]"

    def describe(self) -> str:
        name = self.path.name
        return name if self.label == name else f"{name}: {self.label}"


def iter_items(
    path: Path, prefix: str, on_read: Callable[[int], None] | None = None
) -> Iterator[Any]:
    """Each value at `prefix` (`item`, `users.item`, ...), parsed one at a time."""
    with open_binary(path, on_read) as stream:
        try:
            yield from ijson.items(stream, prefix, use_float=True)
        except ijson.JSONError as exc:
            raise SourceError(f"{path} is not valid JSON: {first_line(exc)}") from None


def iter_pairs(
    path: Path, prefix: str, on_read: Callable[[int], None] | None = None
) -> Iterator[tuple[str, Any]]:
    """Each key and value of the object at `prefix` ('' for the top level)."""
    with open_binary(path, on_read) as stream:
        try:
            yield from ijson.kvitems(stream, prefix, use_float=True)
        except ijson.JSONError as exc:
            raise SourceError(f"{path} is not valid JSON: {first_line(exc)}") from None


def top_level_shape(path: Path) -> tuple[str, str | None, str | None]:
    """The top-level JSON type, its first key, and the type of that key's value.

    Enough to tell the transition guide's session file (an object keyed by session id)
    from Phase 1's `exportData()` (an object with `sessions` and `carts` arrays)."""
    with open_binary(path) as stream:
        try:
            events = ijson.parse(stream)
            _, first_event, _ = next(events)
            if first_event != "start_map":
                return first_event, None, None
            _, event, value = next(events)
            if event == "end_map":
                return "start_map", None, None
            key = str(value)
            _, value_event, _ = next(events)
            return "start_map", key, value_event
        except StopIteration:
            raise SourceError(f"{path} is empty") from None
        except ijson.JSONError as exc:
            raise SourceError(f"{path} is not valid JSON: {first_line(exc)}") from None


def is_phase1_export(path: Path) -> bool:
    kind, key, value_event = top_level_shape(path)
    if kind != "start_map":
        raise SourceError(f"{path}: expected a JSON object, found {kind.replace('start_', '')}")
    return key is not None and (key in EXPORT_KEYS or value_event == "start_array")
