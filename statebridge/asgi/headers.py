"""The helmet-like security headers on every answer (statebridge/asgi/front.py adds them)."""

from __future__ import annotations

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
