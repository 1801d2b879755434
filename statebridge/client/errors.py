"""What the clients raise: one base class, so callers can catch everything at once."""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """Base of every error a statebridge client raises."""


class TransportError(ClientError):
    """The server could not be reached, or did not answer in time."""


class NoSessionError(ClientError):
    """A session-bound call was made before `create_session()` (as Phase 1's client refuses)."""


class ResponseError(ClientError):
    """The server answered with an error status; `envelope` is its error envelope.

    `envelope` is None when the body was not JSON (a proxy's HTML error page, for one).
    """

    def __init__(self, status_code: int, envelope: dict[str, Any] | None, text: str = "") -> None:
        self.status_code = status_code
        self.envelope = envelope
        message = envelope.get("message") if envelope else None
        self.message = str(message) if message is not None else (text[:200] or "no body")
        errors = envelope.get("errors") if envelope else None
        self.errors: list[Any] = errors if isinstance(errors, list) else []
        super().__init__(f"{status_code} {self.message}")
