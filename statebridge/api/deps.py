"""Dependencies shared by the routes, declared once so signatures read like prose."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from statebridge.asgi.body import read_object
from statebridge.wiring.services import Services, services_of


async def json_object(request: Request) -> dict[str, Any]:
    settings = services_of(request).settings
    return await read_object(request, settings.max_body_bytes, settings.max_json_depth)


ServicesDep = Annotated[Services, Depends(services_of)]
Body = Annotated[dict[str, Any], Depends(json_object)]
