"""Polling until something holds, for the tests that wait on real processes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    check: Callable[[], T],
    what: str,
    timeout: float = 30.0,
    tolerate: tuple[type[BaseException], ...] = (),
) -> T:
    """The first truthy value of `check()`, asked every 0.1 s; an exception of a `tolerate`
    type counts as not yet. Fails after `timeout` seconds, naming `what`."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except tolerate as exc:
            last = exc
        else:
            if result:
                return result
        time.sleep(0.1)
    because = f" (last: {last})" if last else ""
    raise AssertionError(f"{what}: not within {timeout:.0f} s{because}")
