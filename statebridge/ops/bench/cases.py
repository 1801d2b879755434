"""What `statebridge bench` can run: one case per route of the two APIs, the session
lifecycle, and the stateful mix.

The route cases are derived from the application's route table: `api_routes()` reads the
stateless and stateful routers, and every route must have its request in CASES, or
`--cases all` refuses to run (tests/unit/test_bench_cases.py fails, naming the route).
Routes statebridge has and Phase 1 has not (probes, metrics, docs, demo pages, session
management) are in
NOT_BENCHED with the reason: the bench compares the two APIs, and those have nothing to be
compared with.

A request is written once, for both load generators (wrk's Lua script and the Python
engine), with placeholders filled in per request, round robin:
- `{user_id}`: a user of the catalog, or the user of the session the request carries;
- `{product_id}`: a product of the catalog;
- `{preferences}`: that user's own preferences as read before the run (JSON), so writing
  them leaves the catalog as it was.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Literal

Face = Literal["stateless", "stateful"]
Route = tuple[Face, str, str]  # (face, method, path as the router writes it)
PLACEHOLDERS = ("user_id", "product_id", "preferences")
DEFAULT_ENDPOINTS = ("/health", "/info", "/users", "/products")


@dataclass(frozen=True)
class Step:
    """One request: `path` and `body` may hold placeholders."""

    face: Face
    method: str
    path: str
    body: str | None = None  # JSON text; None: no body (an empty one for POST and PUT)
    session: bool = False  # carries Session-ID: a live session's, or the flow's own

    @property
    def creates_session(self) -> bool:
        return self.face == "stateful" and self.method == "POST" and self.path == "/session"

    @property
    def varies(self) -> bool:
        """Whether requests differ from one to the next."""
        text = self.path + (self.body or "")
        return self.session or any(f"{{{name}}}" in text for name in PLACEHOLDERS)


@dataclass(frozen=True)
class Case:
    """What one benchmark run sends.

    Without `flow`, requests cycle through the steps, each round with the next live session
    (created before the runs, `--sessions` of them) and the next user and product. With
    `flow`, each connection runs the steps in order from a session of its own, created by
    the first step, again and again: the way to measure what consumes sessions."""

    name: str
    steps: tuple[Step, ...]
    route: Route | None = None  # the API route it covers; None for the mix and the lifecycle
    flow: bool = False
    unit: str = ""  # with `flow`: what one pass is ("lifecycles"), reported per second
    workflow: bool = False  # the live sessions need a started workflow

    @property
    def face(self) -> Face:
        return self.steps[0].face

    @property
    def needs_sessions(self) -> bool:
        """Whether it uses the live sessions created before the runs."""
        return not self.flow and any(step.session for step in self.steps)

    @property
    def consumes_sessions(self) -> bool:
        return self.flow


def route_case(
    face: Face,
    method: str,
    path: str,
    body: str | None = None,
    session: bool = False,
    workflow: bool = False,
) -> Case:
    name = f"{method} {path}" if face == "stateless" else f"stateful {method} {path}"
    step = Step(face, method, path, body, session)
    return Case(name, (step,), (face, method, path), workflow=workflow)


def stateful(method: str, path: str, body: str | None = None, session: bool = True) -> Step:
    return Step("stateful", method, path, body, session)


NEW_SESSION = stateful("POST", "/session", '{"userId":"{user_id}"}', session=False)
ADD_TO_CART = '{"productId":"{product_id}","quantity":1}'
PREFERENCES = '{"preferences":{preferences}}'

# Every route of both APIs, in the order `--cases all` runs them: stateless, then the
# stateful routes on the live sessions, then those that make or end sessions.
CASES: tuple[Case, ...] = (
    route_case("stateless", "GET", "/health"),
    route_case("stateless", "GET", "/info"),
    route_case("stateless", "GET", "/users"),
    route_case("stateless", "GET", "/products"),
    route_case("stateless", "GET", "/random"),
    route_case("stateless", "GET", "/users/{user_id}"),
    route_case("stateless", "GET", "/demonstrate/stateless"),
    route_case("stateless", "GET", "/compare/stateful"),
    route_case("stateless", "POST", "/calculate", '{"operation":"add","values":[1,2,3]}'),
    route_case("stateful", "GET", "/health"),
    route_case("stateful", "GET", "/info", session=True),
    route_case("stateful", "GET", "/session", session=True),
    route_case("stateful", "PUT", "/session", '{"data":{"theme":"dark"}}', session=True),
    route_case("stateful", "GET", "/cart", session=True),
    route_case("stateful", "POST", "/cart/add", ADD_TO_CART, session=True),
    route_case("stateful", "DELETE", "/cart/remove/{product_id}", session=True),
    route_case("stateful", "DELETE", "/cart", session=True),
    route_case("stateful", "GET", "/profile", session=True),
    route_case("stateful", "PUT", "/profile/preferences", PREFERENCES, session=True),
    route_case("stateful", "GET", "/demonstrate/stateful", session=True),
    route_case("stateful", "POST", "/workflow/start", session=True),
    # the sessions' workflows are started before the runs; a finished workflow answers
    # "Workflow completed" (200) to every further step, on both servers
    route_case("stateful", "POST", "/workflow/next", session=True, workflow=True),
    # ending a session takes one: each connection creates one and deletes it, in a loop
    Case(
        "stateful DELETE /session",
        (NEW_SESSION, stateful("DELETE", "/session")),
        ("stateful", "DELETE", "/session"),
        flow=True,
        unit="sessions",
    ),
    # last: the sessions it creates stay until they expire
    Case("stateful POST /session", (NEW_SESSION,), ("stateful", "POST", "/session")),
)

# A visitor from arrival to logout, the same requests on both servers.
LIFECYCLE = Case(
    "session lifecycle",
    (
        NEW_SESSION,
        Step("stateless", "GET", "/products"),
        Step("stateless", "GET", "/users/{user_id}"),
        stateful("POST", "/cart/add", ADD_TO_CART),
        stateful("POST", "/cart/add", ADD_TO_CART),
        stateful("POST", "/cart/add", ADD_TO_CART),
        stateful("GET", "/cart"),
        stateful("PUT", "/profile/preferences", PREFERENCES),
        stateful("POST", "/workflow/start"),
        stateful("POST", "/workflow/next"),
        stateful("DELETE", "/session"),
    ),
    flow=True,
    unit="lifecycles",
)

# The guide's stateful mix (the default before the route cases): an add, then a read.
MIX = Case(
    "mix: POST /cart/add + GET /cart",
    (stateful("POST", "/cart/add", ADD_TO_CART), stateful("GET", "/cart")),
)

# statebridge's own routes: not in Phase 1, so nothing to compare them with.
NOT_BENCHED: dict[str, str] = {
    "/health/live": "liveness probe, statebridge only",
    "/health/ready": "readiness probe, statebridge only",
    "/metrics": "Prometheus metrics, statebridge only",
    "/openapi.json": "API description, statebridge only",
    "/docs": "Swagger UI, statebridge only",
    "/docs/{name}": "Swagger UI's files, statebridge only",
    "/demo": "demo page, statebridge only",
    "/demo/{name}": "demo page's files, statebridge only",
    # session management of the stateful API that Phase 1 does not have
    "/session/regenerate": "session id regeneration, statebridge only",
    "/session/siblings": "the user's other sessions, statebridge only",
    "/session/siblings/{hint}": "the user's other sessions, statebridge only",
}


def api_routes() -> list[Route]:
    """(face, method, path) of every route of the stateless and stateful routers."""
    from fastapi.routing import APIRoute

    from statebridge.api.stateful.routes import router as stateful_router
    from statebridge.api.stateless.routes import router as stateless_router

    found: list[Route] = []
    routers: tuple[tuple[Face, list[object]], ...] = (
        ("stateless", list(stateless_router.routes)),
        ("stateful", list(stateful_router.routes)),
    )
    for face, routes in routers:
        for route in routes:
            if isinstance(route, APIRoute):
                found.extend((face, method, route.path) for method in sorted(route.methods or ()))
    return found


def coverage_problems(routes: list[Route] | None = None) -> list[str]:
    """Routes without a case, and cases naming no route; empty when they match."""
    known = api_routes() if routes is None else routes
    covered = {case.route for case in CASES}
    problems = [
        f"no case for {face} {method} {path}"
        for face, method, path in known
        if (face, method, path) not in covered
    ]
    for case in CASES:
        if case.route not in known:
            problems.append(f"case {case.name!r} names no route of the API: {case.route}")
    return problems


def route_cases() -> list[Case]:
    """Every route's case, checked against the route table."""
    problems = coverage_problems()
    if problems:
        raise RuntimeError("; ".join(problems))
    return list(CASES)


def endpoint_cases(endpoints: tuple[str, ...], with_mix: bool) -> list[Case]:
    """The cases before `--cases`: GETs on the stateless server, then the mix."""
    found = [Case(f"GET {path}", (Step("stateless", "GET", path),)) for path in endpoints]
    return [*found, MIX] if with_mix else found


def select(spec: str) -> list[Case]:
    """The cases `--cases` names: `all` (every route and the lifecycle), names or globs,
    comma-separated, matched without regard to case; in the order of the table."""
    catalogue = [*route_cases(), LIFECYCLE, MIX]
    chosen: set[str] = set()
    for pattern in (part.strip() for part in spec.split(",")):
        if not pattern:
            continue
        if pattern.lower() == "all":
            matched = [case.name for case in catalogue if case is not MIX]
        else:
            wanted = pattern.lower()
            matched = [
                case.name for case in catalogue if fnmatch.fnmatchcase(case.name.lower(), wanted)
            ]
        if not matched:
            names = ", ".join(case.name for case in catalogue)
            raise ValueError(f"no case matches {pattern!r}; the cases: all, {names}")
        chosen.update(matched)
    if not chosen:
        raise ValueError("no case given")
    return [case for case in catalogue if case.name in chosen]


def fill(template: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        template = template.replace(f"{{{name}}}", value)
    return template
