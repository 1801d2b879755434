"""Swagger UI at /docs (combined face only), served from files installed with the package.

FastAPI's default page loads Swagger UI from a CDN, which the Content-Security-Policy
forbids (and which a machine without internet cannot reach): the page stayed blank. Here
the script, stylesheet and icon come from the `fastapi-swagger` package's data files,
under /docs/, and the page gets a policy of its own that allows exactly what it needs:

- scripts from 'self', plus the page's one inline script (Swagger UI's start-up call)
  by its sha256 hash, computed from the page as built; no 'unsafe-inline' for scripts;
- styles from 'self' and inline (Swagger UI sets style attributes);
- images from 'self' and data: (the stylesheet's icons); fetches to 'self' only
  (the OpenAPI document and "Try it out").

As with the /demo page, there is no `upgrade-insecure-requests`: on a plain-http host
that is not loopback it would send the browser to https for the assets.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.exceptions import HTTPException
from starlette.responses import Response

DOCS_PATH = "/docs"
ASSET_PACKAGE = "fastapi_swagger.resources"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def page_policy(page: bytes) -> str:
    """The page's Content-Security-Policy: its inline scripts allowed by hash, nothing more."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in INLINE_SCRIPT.findall(page)
    )
    return (
        "default-src 'self';base-uri 'self';connect-src 'self';form-action 'self';"
        "frame-ancestors 'self';img-src 'self' data:;object-src 'none';"
        f"script-src 'self' {hashes};script-src-attr 'none';style-src 'self' 'unsafe-inline'"
    )


@cache
def asset(name: str) -> tuple[bytes, str]:
    """The file's bytes and a strong ETag for them (the bundle is 1.7 MB: revalidate)."""
    content = resources.files(ASSET_PACKAGE).joinpath(name).read_bytes()
    return content, '"' + hashlib.sha256(content).hexdigest()[:32] + '"'


def docs_router(title: str, openapi_url: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    html = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{title} - Swagger UI",
        swagger_js_url=f"{DOCS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_PATH}/favicon-32x32.png",
        oauth2_redirect_url=None,
    )
    page = bytes(html.body)
    headers = {"Cache-Control": "no-cache", "Content-Security-Policy": page_policy(page)}

    @router.get(DOCS_PATH)
    async def swagger_ui() -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=headers)

    @router.get(DOCS_PATH + "/{name}")
    async def swagger_asset(name: str, request: Request) -> Response:
        if name not in ASSETS:
            raise HTTPException(404)
        content, etag = asset(name)
        cache_headers = {"Cache-Control": "no-cache", "ETag": etag}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=cache_headers)
        return Response(content, media_type=ASSETS[name], headers=cache_headers)

    return router
