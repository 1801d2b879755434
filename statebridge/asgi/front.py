"""The one ASGI layer in front of the faces: everything every request goes through.

The listener's port picks the face (combined, stateless, stateful). Then, in one place:
the trailing slash is dropped as Express does, the request id is taken or made, CORS is
answered (preflight) or applied, the helmet headers, X-Instance-ID and X-Request-ID are
added, metrics are counted, the access log is written, and an error nothing handled becomes
a 500 in the envelope. The hot routes are answered straight from here
(statebridge/asgi/fastlane.py); everything else goes to the face's FastAPI app.

These used to be four middleware layers around each app. On a small GET every layer cost a
call and a wrapped `send`, together more than the route itself, so they were folded into
this one (docs/perf-history.md has the measurements).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive, Scope, Send

from statebridge.asgi.cors import Cors
from statebridge.asgi.fastlane import FastLanes
from statebridge.asgi.headers import CSP, SECURITY_HEADERS
from statebridge.envelope import error
from statebridge.observability.logs import AccessLog
from statebridge.observability.metrics import Metrics
from statebridge.observability.requests import (
    CLIENT_CLOSED,
    CURRENT_REQUEST_ID,
    SANE_REQUEST_ID,
    new_request_id,
    route_of,
)

log = logging.getLogger("statebridge")
SESSION_HEADER = b"session-id"
PREFLIGHT_HEADER = b"access-control-request-method"


@dataclass(frozen=True)
class FaceApp:
    app: FastAPI
    lanes: FastLanes


class Front:
    def __init__(
        self,
        faces: Mapping[int, FastAPI],
        default: FastAPI,
        *,
        instance_id: str,
        metrics: Metrics,
        access_log: AccessLog | None,
        cors: Cors,
        session_cookie: str | None = None,
        on_shutdown: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        built: dict[int, FaceApp] = {}
        self.faces = {port: built.setdefault(id(app), face_of(app)) for port, app in faces.items()}
        self.default = built.get(id(default)) or face_of(default)
        self.metrics = metrics
        self.access_log = access_log
        self.cors = cors
        self.session_cookie = session_cookie.encode() + b"=" if session_cookie else None
        self.extra = [*SECURITY_HEADERS, (b"x-instance-id", instance_id.encode("latin-1"))]
        self.extra_without_csp = [item for item in self.extra if item[0] != CSP]
        # runs at lifespan shutdown: after in-flight requests finish, before the process ends
        # (uvicorn re-raises SIGTERM once serve() returns, so code after it never runs)
        self.on_shutdown = on_shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        server = scope.get("server")
        face = self.faces.get(server[1], self.default) if server else self.default
        path: str = scope.get("path", "")
        if len(path) > 1 and path.endswith("/"):
            # Express routes `/users/` as `/users`; FastAPI would answer a 307 instead
            scope = {**scope, "path": path.rstrip("/") or "/"}
        if kind != "http":
            await face.app(scope, receive, send)
            return
        await self._http(face, scope, receive, send)

    async def _http(self, face: FaceApp, scope: Scope, receive: Receive, send: Send) -> None:
        started_at = time.perf_counter()
        request_id: bytes | None = None
        origin: bytes | None = None
        has_session = preflight = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if SANE_REQUEST_ID.match(value):
                    request_id = value
            elif name == SESSION_HEADER:
                has_session = bool(value)
            elif name == b"origin":
                origin = value
            elif name == PREFLIGHT_HEADER:
                preflight = True
            elif name == b"cookie" and self.session_cookie and self.session_cookie in value:
                has_session = True
        if request_id is None:
            request_id = new_request_id()
        request_text = request_id.decode()
        preflight = preflight and origin is not None and scope["method"] == "OPTIONS"
        status = 500
        response_started = False

        async def send_decorated(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", ()))
                if not preflight:  # a preflight answer carries CORS headers of its own
                    self.cors.apply(headers, origin)
                headers.append((b"x-request-id", request_id))
                if any(name == CSP for name, _ in headers):
                    # the route chose its own policy (the /demo page): keep it
                    headers.extend(self.extra_without_csp)
                else:
                    headers.extend(self.extra)
                message["headers"] = headers
            await send(message)

        metrics = self.metrics
        metrics.in_flight += 1
        # every event logged while this request is answered carries its id
        context = CURRENT_REQUEST_ID.set(request_text)
        try:
            lane = None if preflight else face.lanes.find(scope)
            if preflight:
                await self.cors.preflight(scope["headers"])(scope, receive, send_decorated)
            elif lane is None:
                await face.app(scope, receive, send_decorated)
            else:
                response = await face.lanes.answer(lane, scope, receive, send)
                await response(scope, receive, send_decorated)
        except ClientDisconnect:
            if not response_started:
                status = CLIENT_CLOSED
        except Exception as exc:
            log.error(
                "unhandled error in %s %s (request %s)",
                scope.get("method"),
                route_of(scope),
                request_text,
                exc_info=exc,
            )
            # FastAPI's outermost layer may already have answered (and then re-raised)
            if not response_started:
                await error(500, "Internal server error")(scope, receive, send_decorated)
        finally:
            CURRENT_REQUEST_ID.reset(context)
            metrics.in_flight -= 1
            seconds = time.perf_counter() - started_at
            route = route_of(scope)
            method = scope.get("method", "")
            metrics.observe_request(route, method, status, seconds)
            if self.access_log is not None:
                client = scope.get("client")
                self.access_log.write(
                    request_text,
                    method,
                    route,
                    status,
                    seconds,
                    has_session,
                    client[0] if client else "",
                    scope.get("scheme", "http"),
                )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.flush_logs()
                if self.on_shutdown is not None:
                    await self.on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def flush_logs(self) -> None:
        """Write the access-log lines still gathered (the server is stopping)."""
        if self.access_log is not None:
            self.access_log.flush()


def face_of(app: FastAPI) -> FaceApp:
    return FaceApp(app, FastLanes(app))
