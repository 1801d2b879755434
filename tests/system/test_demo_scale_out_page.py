"""The demo page's scale-out section, behind a real nginx in front of two instances: the
page's own requests (a session made, then read six times) sent over HTTP through nginx. With
the memory backend the instance that did not make the session answers 401; on a shared
backend (the embedded file, PostgreSQL + Redis) both find it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.nginx import NGINX, Proxy, new_certs, proxy_to
from tests.support.pairs import backend_env, running_pair

pytestmark = pytest.mark.nginx

if NGINX is None:
    pytest.skip(
        "nginx is not installed (scripts/ci-install-nginx.sh installs it)", allow_module_level=True
    )

READS = 6  # the page's "Send 6 requests"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return new_certs(tmp_path_factory.mktemp("certs"))


@contextlib.contextmanager
def behind_nginx(
    kind: str, request: pytest.FixtureRequest, certs: Path, root: Path
) -> Iterator[Proxy]:
    """Two instances of `kind` (`memory`: the sessions in each process) behind nginx."""
    memory = kind == "memory"
    extra = {"STATEBRIDGE_SESSION_BACKEND": "memory"} if memory else None
    with (
        backend_env("embedded" if memory else kind, request) as env,
        running_pair(env, root / "data", extra) as pair,
        proxy_to([server.port for server in pair], root / "nginx", certs) as proxy,
    ):
        yield proxy


def the_page_s_requests(client: httpx.Client, base: str) -> list[tuple[str, int]]:
    """What "Send 6 requests" sends: POST /session, then GET /session six times with its
    id; (instance, status) of each answer, from the X-Instance-ID header."""
    made = client.post(
        f"{base}/api/stateful/session",
        json={"userId": "user001", "data": {"startedFrom": "scale-out demo"}},
    )
    assert made.status_code == 200, made.text
    session = made.headers["session-id"]
    answers = [(made.headers["x-instance-id"], made.status_code)]
    for _ in range(READS):
        read = client.get(f"{base}/api/stateful/session", headers={"Session-ID": session})
        assert read.status_code in (200, 401), read.text
        answers.append((read.headers["x-instance-id"], read.status_code))
    return answers


@pytest.mark.parametrize("kind", ["memory", "embedded", "postgresql+redis"])
def test_the_page_shows_the_session_lost_only_on_the_memory_backend(
    kind: str, request: pytest.FixtureRequest, certs: Path, tmp_path: Path
) -> None:
    with (
        behind_nginx(kind, request, certs, tmp_path) as proxy,
        httpx.Client(verify=False, timeout=30) as client,
    ):
        page = client.get(f"{proxy.https_url}/demo")
        assert page.status_code == 200
        assert 'id="so-send"' in page.text
        answers = the_page_s_requests(client, proxy.https_url)
    maker = answers[0][0]
    reads = answers[1:]
    assert len({instance for instance, _ in answers}) == 2, answers  # nginx used both
    for instance, status in reads:
        if kind == "memory":  # only the instance that made it knows the session
            assert status == (200 if instance == maker else 401), answers
        else:
            assert status == 200, answers
    if kind == "memory":
        assert any(status == 401 for _, status in reads), answers
