"""Finding the stateless and the stateful API behind a URL the user typed.

A statebridge combined face (port 8000) serves them under /api/stateless and
/api/stateful; Phase 1 (and statebridge's ports 3001/3002) serve one API at the root.
Asking each candidate's /health which `serverType` it is tells them apart.
"""

from __future__ import annotations

from typing import Literal

import httpx

Side = Literal["stateless", "stateful"]
DEFAULT_URL = "http://localhost:8000"


class LocateError(Exception):
    """No server of the wanted kind answers at the URL."""


def candidates(url: str, side: Side) -> list[str]:
    base = url.rstrip("/")
    if base.endswith(f"/api/{side}"):
        return [base]
    return [f"{base}/api/{side}", base]


async def server_type(http: httpx.AsyncClient, base: str) -> str | None:
    """`data.serverType` of base/health, or None when that is not a Phase 1 style health."""
    try:
        response = await http.get(f"{base}/health")
        data = response.json().get("data") if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    kind = data.get("serverType") if isinstance(data, dict) else None
    return kind if isinstance(kind, str) else None


async def locate(url: str, side: Side, http: httpx.AsyncClient | None = None) -> str:
    """The base URL of the `side` API at `url`; raises LocateError with a hint if none."""
    own = http is None
    client = http or httpx.AsyncClient(timeout=10.0)
    try:
        tried = []
        for base in candidates(url, side):
            tried.append(base)
            if await server_type(client, base) == side:
                return base
    finally:
        if own:
            await client.aclose()
    option = "--url" if side == "stateless" else "--stateful-url"
    raise LocateError(
        f"no {side} server answers at {' or '.join(tried)} (GET /health with serverType "
        f'"{side}"); is it running? For Phase 1\'s separate ports pass {option} '
        f"(Phase 1: stateless on :3001, stateful on :3002)"
    )
