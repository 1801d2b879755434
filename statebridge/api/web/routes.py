"""Serves the browser demo from package data: one HTML page, its script and its stylesheet.

No build step and nothing from a CDN: the files ship inside the package, and the page
loads its script from /demo/app.js because the Content-Security-Policy forbids inline
scripts.

The page's own policy is the API's strict one without `upgrade-insecure-requests`: that
directive makes a browser fetch the script and the API over https, which breaks the page
on a plain-http host that is not loopback (a LAN address, an nginx on port 80).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.responses import Response

router = APIRouter(include_in_schema=False)
PAGE_POLICY = (
    "default-src 'self';base-uri 'self';connect-src 'self';form-action 'self';"
    "frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';"
    "script-src-attr 'none';style-src 'self' 'unsafe-inline'"
)
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}


@cache
def asset(name: str) -> bytes:
    return resources.files("statebridge.api.web").joinpath("static", name).read_bytes()


def serve(name: str) -> Response:
    headers = {"Cache-Control": "no-cache", "Content-Security-Policy": PAGE_POLICY}
    return Response(asset(name), media_type=ASSETS[name], headers=headers)


@router.get("/demo")
async def page() -> Response:
    return serve("index.html")


@router.get("/demo/{name}")
async def static_file(name: str) -> Response:
    if name not in ASSETS or name == "index.html":
        raise HTTPException(404)
    return serve(name)
