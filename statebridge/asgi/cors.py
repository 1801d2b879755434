"""CORS for every answer, applied once in front of the faces.

The policy is Starlette's `CORSMiddleware` (its configuration, origin matching and preflight
answer are used as they are); only the headers of an ordinary answer are written here, on
the raw header list, because that runs on every request and Starlette's version builds two
header objects per answer. The result is the same headers Starlette would send.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

RawHeaders = list[tuple[bytes, bytes]]
ALLOW_ORIGIN = b"access-control-allow-origin"
VARY = b"vary"


async def _no_app(*_args: object) -> None:  # the policy object never calls an app
    raise RuntimeError("CORS policy used as an app")


class Cors:
    def __init__(
        self,
        allow_origins: Collection[str],
        allow_methods: Collection[str],
        allow_headers: Collection[str],
        expose_headers: Collection[str],
    ) -> None:
        self.policy = CORSMiddleware(
            _no_app,
            allow_origins=allow_origins,
            allow_credentials="*" not in allow_origins,
            allow_methods=allow_methods,
            allow_headers=allow_headers,
            expose_headers=expose_headers,
        )
        self.simple = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in self.policy.simple_headers.items()
        ]

    def preflight(self, scope_headers: RawHeaders) -> Response:
        return self.policy.preflight_response(request_headers=Headers(raw=scope_headers))

    def apply(self, headers: RawHeaders, origin: bytes | None) -> None:
        """Add the headers of an ordinary answer to `headers`, in place."""
        policy = self.policy
        if origin is None:
            _add_vary(headers)
            return
        for name, value in self.simple:
            _set(headers, name, value)
        text = origin.decode("latin-1")
        explicit = (policy.allow_all_origins and policy.allow_credentials) or (
            not policy.allow_all_origins and policy.is_allowed_origin(origin=text)
        )
        if explicit:
            _set(headers, ALLOW_ORIGIN, origin)
        _add_vary(headers)


def _set(headers: RawHeaders, name: bytes, value: bytes) -> None:
    """Replace every `name` header by one with `value` (as MutableHeaders does)."""
    if any(key == name for key, _ in headers):
        headers[:] = [item for item in headers if item[0] != name]
    headers.append((name, value))


def _add_vary(headers: RawHeaders) -> None:
    """`Vary: <what was there>, Origin`, as one header."""
    existing = [value for key, value in headers if key == VARY]
    if existing:
        headers[:] = [item for item in headers if item[0] != VARY]
    headers.append((VARY, b", ".join([*existing, b"Origin"])))
