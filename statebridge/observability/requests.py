"""Request ids, the route label of a request, and the status of a client that went away."""

from __future__ import annotations

import itertools
import os
import re
from contextvars import ContextVar

from starlette.types import Scope

from statebridge.observability.metrics import UNMATCHED

SANE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,128}$")
CLIENT_CLOSED = 499  # nginx's code for a client that went away before the answer


CURRENT_REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
"""The id of the request being answered: set by the front for the request's duration (the
tasks and threads the request starts inherit it), read by the JSON log formatter."""

_PREFIX = ""  # this process's: made again in every forked child (see below)
_SEQUENCE = itertools.count(1)


def new_prefix() -> None:
    """A fresh random prefix and count for this process. Run at import and again in each
    child after a fork: workers forked from one server would otherwise share the parent's
    prefix and count, and issue the same ids."""
    global _PREFIX, _SEQUENCE
    _PREFIX = os.urandom(8).hex()
    _SEQUENCE = itertools.count(1)


new_prefix()
os.register_at_fork(after_in_child=new_prefix)


def new_request_id() -> bytes:
    """24 hex digits: 16 random per process, then the process's request number (mod 2^32).
    Unique across instances and their workers without a system call per request."""
    return f"{_PREFIX}{next(_SEQUENCE) & 0xFFFFFFFF:08x}".encode("ascii")


def route_of(scope: Scope) -> str:
    """The matched route's template, prefix included (`/api/stateful/cart/remove/{product_id}`),
    never the raw path: label values stay bounded whatever clients send.

    FastAPI >= 0.160 keeps included routes unflattened and records the full template in its
    effective route context; older versions flatten them, so the route's own path is whole."""
    context = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(context, "path_format", None)
    if isinstance(template, str) and template:
        return template
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED
