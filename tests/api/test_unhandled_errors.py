"""An error no route expected: an answer in the envelope, with no detail leaked."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy.exc import DataError, IntegrityError

from statebridge.api.app import build_app
from statebridge.asgi.cors import Cors
from statebridge.asgi.front import Front
from statebridge.config import Settings
from statebridge.observability.metrics import METRICS
from statebridge.wiring.services import build_services


@pytest.mark.parametrize(
    ("raised", "status", "message"),
    [
        (RuntimeError("secret detail: SELECT * FROM users"), 500, "Internal server error"),
        (DataError("INSERT ...", {}, Exception("value too long")), 400, "Validation failed"),
        (
            IntegrityError("INSERT ...", {}, Exception("duplicate key")),
            409,
            "Conflicting change, try again",
        ),
    ],
)
async def test_unexpected_errors_answer_in_the_envelope(
    tmp_path: Path, raised: Exception, status: int, message: str
) -> None:
    services = await build_services(Settings(data_dir=tmp_path, access_log=False))
    try:
        app = build_app(services, "combined")

        async def explode() -> None:
            raise raised

        app.add_api_route("/explode", explode)
        front = Front(
            {80: app},
            app,
            instance_id="test",
            metrics=METRICS,
            access_log=None,
            cors=Cors(["*"], ["GET"], [], []),
        )
        transport = httpx.ASGITransport(app=front, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/explode", headers={"X-Request-ID": "boom-1"})
            assert response.status_code == status
            body = response.json()
            assert body["status"] == "error"
            assert body["message"] == message
            assert "SELECT" not in response.text and "Traceback" not in response.text
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["x-request-id"] == "boom-1"
            assert (await client.get("/health")).status_code == 200
    finally:
        await services.close()
