"""`/health/live`, `/health/ready` and `/metrics`, beside Phase 1's `/health`.

- live: the process answers (its event loop turns); never looks at a dependency, so a
  database outage does not get healthy processes restarted.
- ready: the database, the source of truth, answers within STATEBRIDGE_READY_TIMEOUT;
  otherwise 503. Redis (when configured) is checked and reported too, but a Redis down only
  makes the answer `degraded`: sessions and the catalog are served from the database
  meanwhile, and taking every instance out of rotation during a Redis failover would be a
  full outage.
- metrics: Prometheus text, from this process's counters plus a few gauges (api/gauges.py)
  and the process
  and Python families read now (each worker reports its own process); only
  on the exact path `/metrics` as sent (not `/metrics/`, `/%6detrics`, `/metrics%2F`), so
  that a proxy blocking that path is not walked around by another spelling of it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from statebridge.api import schemas
from statebridge.api.deps import ServicesDep
from statebridge.api.gauges import gauges
from statebridge.envelope import JSONResponse, error, error_body, success
from statebridge.observability import process
from statebridge.observability.metrics import CONTENT_TYPE, METRICS
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
        503: {"model": schemas.NotReady, "description": "The database is down"},
    },
)
async def ready(services: ServicesDep) -> Response:
    timeout = services.settings.ready_timeout
    checks: dict[str, Any] = {"database": check_database}
    if services.redis is not None:
        checks["redis"] = check_redis
    results = await asyncio.gather(*(probe(check, services, timeout) for check in checks.values()))
    components = dict(zip(checks, results, strict=True))
    down = [name for name, result in components.items() if result["status"] != "up"]
    data: dict[str, Any] = {
        "status": "ready",
        "degraded": "redis" in down,
        "instanceId": services.instance_id,
        "components": components,
    }
    if "database" not in down:
        message = "Service is ready" + (" (degraded: redis is down)" if down else "")
        return success(data, message)
    data["status"] = "not ready"
    errors = [
        {"field": name, "message": f"{name} is down ({components[name]['error']})"} for name in down
    ]
    body = {**error_body("Service not ready", errors), "data": data}
    return JSONResponse(body, status_code=503, headers={"Cache-Control": "no-store"})


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
