"""A lean path for the hot routes: the same endpoint functions, called without FastAPI's
per-request machinery.

For a small JSON answer FastAPI spends most of the request outside the endpoint: matching
the path against every included router, solving dependencies (a throwaway Response and
exit stacks per request, sync dependencies sent to a thread pool) and wrapping the call in
exception plumbing. Most statebridge routes need none of it: their parameters are the
Request and dependencies that take only the Request (the Services container, the live
session, the JSON body). Those routes are served here, matched by exact method and path:
the same function runs with the same arguments in the same order, and an exception goes to
the same handler the app registered. Anything else (path parameters, HEAD, a path shadowed
by an earlier pattern, an unknown path) falls through to FastAPI untouched.

The front (statebridge/asgi/front.py) asks here first, and wraps both paths in the same CORS,
security headers, metrics and access log, so every request is seen the same way whichever
path served it.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin

from fastapi import FastAPI
from fastapi.params import Depends
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

Handler = Callable[[Request, Exception], Any]


@dataclass(frozen=True)
class Argument:
    """How to produce one endpoint argument from the request."""

    name: str
    call: Callable[[Request], Any] | None  # None: the Request itself (or a path parameter)
    is_async: bool
    path_parameter: bool = False  # a plain `str` path parameter, as the route matched it


@dataclass(frozen=True)
class Lane:
    endpoint: Callable[..., Awaitable[Response]]
    arguments: tuple[Argument, ...]
    route: Any  # put in scope["route"], as FastAPI's router would (metrics read its template)


def takes_only_request(call: Callable[..., Any]) -> bool:
    try:
        hints = typing.get_type_hints(call, include_extras=True)
        parameters = inspect.signature(call).parameters.values()
    except (NameError, TypeError, ValueError):
        return False
    return len(parameters) == 1 and all(hints.get(p.name) is Request for p in parameters)


def plan(
    endpoint: Callable[..., Any], path_parameters: frozenset[str] = frozenset()
) -> tuple[Argument, ...] | None:
    """The endpoint's arguments, if every one can come from the Request alone (or is one of
    the route's `path_parameters`, annotated plain `str`)."""
    try:
        hints = typing.get_type_hints(endpoint, include_extras=True)
        parameters = inspect.signature(endpoint).parameters.values()
    except (NameError, TypeError, ValueError):
        return None
    if not inspect.iscoroutinefunction(endpoint):
        return None
    answer = hints.get("return")
    if not (isinstance(answer, type) and issubclass(answer, Response)):
        return None
    arguments = []
    for parameter in parameters:
        if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            return None
        hint = hints.get(parameter.name)
        if hint is Request:
            arguments.append(Argument(parameter.name, None, False))
            continue
        if parameter.name in path_parameters and hint is str:
            arguments.append(Argument(parameter.name, None, False, path_parameter=True))
            continue
        if get_origin(hint) is not Annotated:
            return None
        depends = [item for item in get_args(hint)[1:] if isinstance(item, Depends)]
        call = depends[0].dependency if len(depends) == 1 else None
        if call is None or not takes_only_request(call):
            return None
        arguments.append(Argument(parameter.name, call, inspect.iscoroutinefunction(call)))
    return tuple(arguments)


def route_entries(app: FastAPI) -> Iterable[Any]:
    """Every route in matching order, with its full path (prefixes included)."""
    try:
        from fastapi.routing import iter_route_contexts  # FastAPI >= 0.160
    except ImportError:  # older versions flatten included routers into app.routes
        return list(app.router.routes)
    return list(iter_route_contexts(app.router.routes))


@dataclass(frozen=True)
class PatternLane:
    """A route with `str` path parameters: taken for a path its pattern matches, unless a
    route FastAPI would try first matches that path too (checked per request)."""

    method: str
    regex: Any
    lane: Lane
    earlier: tuple[tuple[Any, frozenset[str] | None], ...]


def string_parameters(entry: Any) -> frozenset[str] | None:
    """The route's path parameters, if every one is a plain string ({name}, no convertor)."""
    convertors = getattr(entry, "param_convertors", None)
    if not isinstance(convertors, dict):
        return None
    if not all(type(convertor).__name__ == "StringConvertor" for convertor in convertors.values()):
        return None
    return frozenset(convertors)


def lanes_of(app: FastAPI) -> dict[tuple[str, str], Lane]:
    return planned(app)[0]


def planned(app: FastAPI) -> tuple[dict[tuple[str, str], Lane], list[PatternLane]]:
    table: dict[tuple[str, str], Lane] = {}
    patterns: list[PatternLane] = []
    # routes seen so far, as (pattern, methods): FastAPI takes the first full match, so an
    # exact path that an earlier route also matches (for that method) stays FastAPI's
    earlier: list[tuple[Any, set[str] | None]] = []
    for entry in route_entries(app):
        original = getattr(entry, "original_route", entry)
        path = getattr(entry, "path_format", None)
        regex = getattr(entry, "path_regex", None)
        methods: set[str] | None = getattr(entry, "methods", None) or None
        plain = isinstance(path, str) and "{" not in path
        arguments = None
        lanable = isinstance(original, APIRoute) and not getattr(entry, "dependencies", None)
        if lanable and plain:
            arguments = plan(original.endpoint)
        elif lanable and regex is not None and (names := string_parameters(entry)):
            templated = plan(original.endpoint, names)
            if templated is not None and {a.name for a in templated if a.path_parameter} == names:
                before = tuple(
                    (pattern, frozenset(taken) if taken else None) for pattern, taken in earlier
                )
                lane = Lane(original.endpoint, templated, entry)
                patterns.extend(PatternLane(m, regex, lane, before) for m in methods or ())
        if arguments is not None and isinstance(path, str):
            for method in methods or ():
                shadowed = any(
                    pattern.match(path) and (taken is None or method in taken)
                    for pattern, taken in earlier
                )
                if not shadowed and (method, path) not in table:
                    table[(method, path)] = Lane(original.endpoint, arguments, entry)
        if regex is not None:
            earlier.append((regex, methods))
    return table, patterns


class FastLanes:
    """The planned routes of one app, and how to answer them directly."""

    def __init__(self, api: FastAPI) -> None:
        self.api = api
        self.lanes, self.patterns = planned(api)
        self.by_class: dict[type[BaseException], Handler] = {}
        self.by_status: dict[int, Handler] = {}
        for key, handler in api.exception_handlers.items():
            if isinstance(key, int):
                self.by_status[key] = handler
            elif key is not Exception:  # Starlette leaves that one to its outermost layer
                self.by_class[key] = handler

    def find(self, scope: Scope) -> Lane | None:
        path, root = scope["path"], scope.get("root_path")
        if root and path.startswith(root):  # as Starlette's routing sees it
            path = path[len(root) :]
        method = scope["method"]
        lane = self.lanes.get((method, path))
        if lane is not None or not self.patterns:
            return lane
        for candidate in self.patterns:
            if candidate.method != method:
                continue
            match = candidate.regex.match(path)
            if match is None:
                continue
            if any(
                pattern.match(path) and (taken is None or method in taken)
                for pattern, taken in candidate.earlier
            ):
                return None  # FastAPI would answer with an earlier route: leave it to FastAPI
            scope["path_params"] = match.groupdict()
            return candidate.lane
        return None

    async def answer(self, lane: Lane, scope: Scope, receive: Receive, send: Send) -> Response:
        """The endpoint's response, or its registered handler's; an error no handler takes
        is raised."""
        scope["app"] = self.api  # as Starlette would set it (request.app)
        scope["route"] = lane.route
        scope["endpoint"] = lane.endpoint
        request = Request(scope, receive, send)
        try:
            values = {}
            for argument in lane.arguments:
                if argument.path_parameter:
                    values[argument.name] = scope["path_params"][argument.name]
                elif argument.call is None:
                    values[argument.name] = request
                elif argument.is_async:
                    values[argument.name] = await argument.call(request)
                else:
                    values[argument.name] = argument.call(request)
            return await lane.endpoint(**values)
        except Exception as exc:
            handler = self.handler_for(exc)
            if handler is None:
                raise
            response = handler(request, exc)
            if inspect.isawaitable(response):
                response = await response
            return response  # type: ignore[no-any-return]

    def handler_for(self, exc: Exception) -> Handler | None:
        if isinstance(exc, HTTPException) and exc.status_code in self.by_status:
            return self.by_status[exc.status_code]
        for cls in type(exc).__mro__:
            if cls in self.by_class:
                return self.by_class[cls]
        return None
