"""The fast lanes (statebridge/asgi/fastlane.py) take a route only where FastAPI would have
taken the same one, with the same arguments; path parameters included."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from statebridge.asgi.fastlane import FastLanes


def build() -> FastAPI:
    app = FastAPI()

    @app.get("/items/special")
    async def special(request: Request) -> Response:
        return JSONResponse({"special": True})

    @app.get("/items/{name}")
    async def item(name: str, request: Request) -> Response:
        return JSONResponse({"name": name})

    @app.delete("/items/{name}/tags/{tag}")
    async def untag(name: str, tag: str) -> Response:
        return JSONResponse({"name": name, "tag": tag})

    @app.get("/numbers/{number}")
    async def number(number: int) -> Response:  # validated by FastAPI: not a lane
        return JSONResponse({"number": number})

    @app.get("/files/{path:path}")
    async def files(path: str) -> Response:  # a convertor: not a lane
        return JSONResponse({"path": path})

    @app.get("/shadow/{first}")
    async def first(first: str) -> Response:
        return JSONResponse({"first": first})

    @app.get("/shadow/{second}")
    async def second(second: str) -> Response:  # never reached in FastAPI either
        return JSONResponse({"second": second})

    return app


def scope(method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def answer(lanes: FastLanes, method: str, path: str) -> Any:
    asked = scope(method, path)
    lane = lanes.find(asked)
    if lane is None:
        return None

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: Any) -> None:
        return None

    response = asyncio.run(lanes.answer(lane, asked, receive, send))
    return response.body


def test_string_path_parameters_are_laned_with_their_values() -> None:
    lanes = FastLanes(build())
    assert answer(lanes, "GET", "/items/apple") == b'{"name":"apple"}'
    assert answer(lanes, "DELETE", "/items/a/tags/b") == b'{"name":"a","tag":"b"}'


def test_an_earlier_exact_route_keeps_its_path() -> None:
    lanes = FastLanes(build())
    assert answer(lanes, "GET", "/items/special") == b'{"special":true}'


def test_what_fastapi_must_validate_or_convert_is_left_to_it() -> None:
    lanes = FastLanes(build())
    assert lanes.find(scope("GET", "/numbers/7")) is None
    assert lanes.find(scope("GET", "/files/a/b")) is None
    assert lanes.find(scope("POST", "/items/apple")) is None  # no such method
    assert lanes.find(scope("GET", "/items/a/b")) is None  # no route matches


def test_the_first_of_two_matching_patterns_wins_as_in_fastapi() -> None:
    lanes = FastLanes(build())
    assert answer(lanes, "GET", "/shadow/x") == b'{"first":"x"}'
