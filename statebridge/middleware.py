"""Pure ASGI middleware: helmet-like security headers and the instance id on every answer."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# helmet 7's defaults, as Phase 1 sends them
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self';base-uri 'self';font-src 'self' https: data:;"
        b"form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';"
        b"script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';"
        b"upgrade-insecure-requests",
    ),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"origin-agent-cluster", b"?1"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=15552000; includeSubDomains"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-dns-prefetch-control", b"off"),
    (b"x-download-options", b"noopen"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"x-permitted-cross-domain-policies", b"none"),
    (b"x-xss-protection", b"0"),
]


CSP = b"content-security-policy"


class HeadersMiddleware:
    def __init__(self, app: ASGIApp, instance_id: str) -> None:
        self.app = app
        self.extra = [*SECURITY_HEADERS, (b"x-instance-id", instance_id.encode("latin-1"))]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if any(name == b"content-security-policy" for name, _ in headers):
                    # the route chose its own policy (the /demo page): keep it
                    headers.extend(item for item in self.extra if item[0] != CSP)
                else:
                    headers.extend(self.extra)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
