"""`statebridge bench` covers every route by construction: each route of the two APIs has a
case, each case names a route, and what is not benched says why."""

from __future__ import annotations

from typing import Any, cast

import pytest

from statebridge.api.app import build_app
from statebridge.asgi.fastlane import route_entries
from statebridge.ops.bench import cases, loadgen, wrk
from statebridge.ops.bench.cases import CASES, LIFECYCLE, MIX, NOT_BENCHED, Route
from statebridge.ops.bench.model import Target

PREFIXES: tuple[tuple[str, cases.Face], ...] = (
    ("/api/stateless", "stateless"),
    ("/api/stateful", "stateful"),
)


def app_routes() -> set[tuple[cases.Face | None, str, str]]:
    """(face, method, path) of every route of every listener's app; face None when the
    route is not one of the two APIs' (probes, docs, demo pages)."""
    found: set[tuple[cases.Face | None, str, str]] = set()
    for face in ("combined", "stateless", "stateful"):
        app = build_app(cast(Any, None), face)  # routes only: no request is served
        api_routes = {(method, path) for _, method, path in cases.api_routes()}
        for entry in route_entries(app):
            path: str = entry.path_format
            for method in sorted(set(entry.methods or ()) - {"HEAD"}):
                owner: cases.Face | None = None
                for prefix, prefixed_face in PREFIXES:
                    if path.startswith(prefix + "/"):
                        owner, path = prefixed_face, path.removeprefix(prefix)
                if owner is None and (method, path) in api_routes:
                    owner = "stateful" if face == "stateful" else "stateless"
                found.add((owner, method, path))
    return found


def test_every_route_of_both_apis_has_a_case() -> None:
    problems = cases.coverage_problems()
    assert not problems, "\n".join(problems)
    assert len(cases.route_cases()) == len(cases.api_routes()) == 24


def test_a_route_without_a_case_is_named() -> None:
    extra: Route = ("stateful", "PATCH", "/cart/{product_id}")
    problems = cases.coverage_problems([*cases.api_routes(), extra])
    assert problems == ["no case for stateful PATCH /cart/{product_id}"]


def test_a_case_without_its_route_is_named() -> None:
    gone: Route = ("stateless", "GET", "/random")
    problems = cases.coverage_problems([r for r in cases.api_routes() if r != gone])
    assert problems == ["case 'GET /random' names no route of the API: " + repr(gone)]


def test_every_route_of_every_listener_is_benched_or_says_why() -> None:
    covered = {case.route for case in CASES}
    for face, method, path in sorted(app_routes(), key=str):
        if face is None or path in NOT_BENCHED:  # statebridge's own routes say why
            assert path in NOT_BENCHED, f"{method} {path}: no case and no reason in NOT_BENCHED"
        else:
            assert (face, method, path) in covered, f"{face} {method} {path} has no case"
    assert set(NOT_BENCHED) <= {path for _, _, path in app_routes()}, "a reason for no route"


def test_all_is_every_route_then_the_lifecycle() -> None:
    chosen = cases.select("all")
    assert chosen == [*CASES, LIFECYCLE]
    assert MIX not in chosen
    assert len({case.name for case in chosen}) == len(chosen)


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ("GET /health", ["GET /health"]),
        ("stateful GET /health, get /health", ["GET /health", "stateful GET /health"]),
        ("stateful *workflow*", ["stateful POST /workflow/start", "stateful POST /workflow/next"]),
        ("mix*,session lifecycle", ["session lifecycle", "mix: POST /cart/add + GET /cart"]),
    ],
)
def test_cases_are_chosen_by_name_or_glob_in_table_order(spec: str, names: list[str]) -> None:
    assert [case.name for case in cases.select(spec)] == names


def test_an_unknown_case_is_refused_with_the_list() -> None:
    with pytest.raises(ValueError, match=r"no case matches 'GET /nothing'; the cases: all, GET"):
        cases.select("GET /health,GET /nothing")


def test_the_lifecycle_is_the_issues_visit() -> None:
    steps = [(step.method, step.path) for step in LIFECYCLE.steps]
    assert steps == [
        ("POST", "/session"),
        ("GET", "/products"),
        ("GET", "/users/{user_id}"),
        *[("POST", "/cart/add")] * 3,
        ("GET", "/cart"),
        ("PUT", "/profile/preferences"),
        ("POST", "/workflow/start"),
        ("POST", "/workflow/next"),
        ("DELETE", "/session"),
    ]
    assert LIFECYCLE.flow and LIFECYCLE.unit == "lifecycles"


@pytest.mark.parametrize("case", [*CASES, LIFECYCLE, MIX], ids=lambda case: case.name)
def test_each_case_can_be_run(case: cases.Case) -> None:
    if case.flow:  # a session of its own: created first, carried by every stateful step
        first, *rest = case.steps
        assert first.creates_session and not first.session
        assert all(step.session for step in rest if step.face == "stateful")
        assert case.consumes_sessions and not case.needs_sessions
    else:  # one server per run
        assert {step.face for step in case.steps} == {case.face}
        assert not any(step.creates_session for step in case.steps) or case is CASES[-1]
    if case.workflow:
        assert case.needs_sessions


def target() -> Target:
    return Target(
        "here",
        "http://127.0.0.1:1/base",
        "http://127.0.0.1:2",
        sessions=[("s1", "user001"), ("s2", "user002")],
        users=["user001", "user002"],
        preferences={"user001": '{"theme":"light"}', "user002": '{"theme":"dark"}'},
        products=["prod001", "prod002", "prod003"],
    )


def test_requests_take_sessions_users_and_products_in_turn() -> None:
    make = loadgen.case_requests(target(), cases.select("stateful PUT /profile/preferences")[0])
    first, second, third = make(0), make(1), make(2)
    assert first.startswith(b"PUT /profile/preferences HTTP/1.1\r\nHost: 127.0.0.1:2\r\n")
    assert b"Session-ID: s1\r\n" in first and first.endswith(b'{"preferences":{"theme":"light"}}')
    assert b"Session-ID: s2\r\n" in second and second.endswith(b'{"preferences":{"theme":"dark"}}')
    assert b"Session-ID: s1\r\n" in third
    users = loadgen.case_requests(target(), cases.select("GET /users/{user_id}")[0])
    assert users(1).startswith(b"GET /base/users/user002 HTTP/1.1\r\n")


def test_the_mix_alternates_add_and_read_on_one_session() -> None:
    make = loadgen.case_requests(target(), MIX)
    add, read, next_add = make(0), make(1), make(2)
    assert add.startswith(b"POST /cart/add ") and add.endswith(
        b'{"productId":"prod001","quantity":1}'
    )
    assert read.startswith(b"GET /cart ") and b"Session-ID: s1\r\n" in read
    assert b"Session-ID: s2\r\n" in next_add and next_add.endswith(b'"prod002","quantity":1}')


def test_wrks_spec_holds_the_steps_and_what_fills_them(tmp_path: Any) -> None:
    spec = tmp_path / "spec.txt"
    wrk.write_spec(spec, MIX, target(), "/api/stateful")
    assert spec.read_text().splitlines() == [
        "R POST /api/stateful/cart/add",
        'B {"productId":"{product_id}","quantity":1}',
        "X",
        "R GET /api/stateful/cart",
        "X",
        "S s1 user001",
        "S s2 user002",
        'U user001 {"theme":"light"}',
        'U user002 {"theme":"dark"}',
        "P prod001",
        "P prod002",
        "P prod003",
    ]
    assert not wrk.is_static(MIX) and wrk.is_static(CASES[0])
