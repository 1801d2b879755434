"""`/health/live`, `/health/ready` and `/metrics`, beside Phase 1's `/health`.

- live: the process answers (its event loop turns); never looks at a dependency, so a
  database outage does not get healthy processes restarted.
- ready: the database and Redis (when configured) answer within STATEBRIDGE_READY_TIMEOUT;
  otherwise 503 with the status of each component.
- metrics: Prometheus text, from this process's counters plus a few gauges and the process
  and Python families read now (each worker reports its own process); only
  on the exact path `/metrics` as sent (not `/metrics/`, `/%6detrics`, `/metrics%2F`), so
  that a proxy blocking that path is not walked around by another spelling of it.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from statebridge import __version__
from statebridge.api import schemas
from statebridge.api.deps import ServicesDep
from statebridge.envelope import JSONResponse, error, error_body, success
from statebridge.observability import process
from statebridge.observability.metrics import CONTENT_TYPE, METRICS, labels
from statebridge.wiring.services import Services

router = APIRouter()


async def check_database(services: Services) -> None:
    async with services.engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))


async def check_redis(services: Services) -> None:
    assert services.redis is not None
    await services.redis.ping()


async def probe(check: Any, services: Services, timeout: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(services), timeout)
    except Exception as exc:  # any failure means "down"; only its type is shown
        reason = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
        return {"status": "down", "error": reason}
    return {"status": "up", "latencyMs": round((time.perf_counter() - started) * 1000, 2)}


@router.get("/health/live", responses=schemas.answers(schemas.Liveness, store=False))
async def live(services: ServicesDep) -> Response:
    data = {"status": "alive", "instanceId": services.instance_id, "uptime": process.uptime()}
    return success(data, "Service is alive")


@router.get(
    "/health/ready",
    responses={
        **schemas.answers(schemas.Readiness, store=False),
        503: {"model": schemas.NotReady, "description": "A component is down"},
    },
)
async def ready(services: ServicesDep) -> Response:
    timeout = services.settings.ready_timeout
    checks: dict[str, Any] = {"database": check_database}
    if services.redis is not None:
        checks["redis"] = check_redis
    results = await asyncio.gather(*(probe(check, services, timeout) for check in checks.values()))
    components = dict(zip(checks, results, strict=True))
    data: dict[str, Any] = {
        "status": "ready",
        "instanceId": services.instance_id,
        "components": components,
    }
    down = [name for name, result in components.items() if result["status"] != "up"]
    if not down:
        return success(data, "Service is ready")
    data["status"] = "not ready"
    errors = [
        {"field": name, "message": f"{name} is down ({components[name]['error']})"} for name in down
    ]
    body = {**error_body("Service not ready", errors), "data": data}
    return JSONResponse(body, status_code=503, headers={"Cache-Control": "no-store"})


async def gauges(services: Services) -> list[tuple[str, str, str, float]]:
    values: list[tuple[str, str, str, float]] = []
    try:
        active = await asyncio.wait_for(services.sessions.count(), services.settings.ready_timeout)
        values.append(("statebridge_active_sessions", "Live sessions (all instances)", "", active))
    except Exception:  # a scrape must not fail because a store is down
        pass
    try:
        live = await asyncio.wait_for(services.live_gauge(), services.settings.ready_timeout)
        if live is not None:
            backend = labels(backend=services.settings.effective_session_backend)
            values.append(
                (
                    "statebridge_sessions_live",
                    "Live sessions by backend, counted without a scan per scrape (sql: at the "
                    "last sweep)",
                    backend,
                    live,
                )
            )
    except Exception:  # a scrape must not fail because a store is down
        pass
    values.append(
        (
            "statebridge_info",
            "This process: instance id and version",
            # not `instance`: Prometheus gives every target that label itself at scrape time
            labels(instance_id=services.instance_id, version=__version__),
            1,
        )
    )
    values.append(
        (
            "statebridge_gc_frozen_objects",
            "Objects built at start-up and kept out of garbage collection (gc.freeze)",
            "",
            gc.get_freeze_count(),
        )
    )
    return values


METRICS_PATH = b"/metrics"


def exact_path(request: Request, wanted: bytes) -> bool:
    """The path as the client sent it (before percent-decoding and the trailing-slash
    trim) is `wanted`."""
    raw = request.scope.get("raw_path")
    if not isinstance(raw, bytes):  # a server without raw_path: the decoded path is all
        return bool(request.scope.get("path", "").encode("latin-1", "replace") == wanted)
    return raw.partition(b"?")[0] == wanted


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, services: ServicesDep) -> Response:
    if not exact_path(request, METRICS_PATH):
        return error(404, "Endpoint not found")
    text = METRICS.render(await gauges(services))
    return Response(text, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})
