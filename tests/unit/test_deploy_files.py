"""The deployment files: committed nginx renders, compose files, Dockerfile, .env.example, the
certificate command and the forwarded-headers setting."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from statebridge.config import Settings
from statebridge.ops.deploy.nginx import (
    NginxOptions,
    RenderError,
    installed_nginx_version,
    render,
)
from statebridge.runtime import granian as granian_server
from tests.support.nginx import NGINX, installed_version, statebridge
from tests.support.servers import Server, clean_env, free_port

pytestmark = pytest.mark.nginx

from tests.support.recordings import ROOT  # noqa: E402

COMPOSE = shutil.which("docker-compose")
PROD_ENV = {
    "POSTGRES_USER": "sb_user",
    "POSTGRES_PASSWORD": "pg-secret",
    "REDIS_PASSWORD": "r-s3",
    "STATEBRIDGE_SESSION_SECRET": "s" * 32,
}


# --- nginx renders -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("committed", "flags"), [("nginx.conf", []), ("nginx.prod.conf", ["--prod"])]
)
def test_committed_nginx_configs_are_fresh_renders(committed: str, flags: list[str]) -> None:
    done = statebridge("deploy", "nginx", *flags)
    assert done.returncode == 0, done.stderr
    assert (ROOT / "nginx" / committed).read_text() == done.stdout, (
        f"nginx/{committed} is stale: run `statebridge deploy nginx {' '.join(flags)} "
        f"--out nginx/{committed}`"
    )


def test_renders_carry_the_required_settings() -> None:
    for prod in (False, True):
        text = render(NginxOptions(prod=prod))
        for line in (
            "server_tokens off;",
            "client_max_body_size 1m;",
            "ssl_protocols TLSv1.2 TLSv1.3;",
            "limit_req_status 429;",
            "limit_req_zone $binary_remote_addr zone=api:10m rate=10r/s;",
            "limit_req zone=api burst=20 delay=10;",
            "proxy_next_upstream error timeout http_502 http_503;",
            "proxy_set_header X-Real-IP $remote_addr;",
            "proxy_set_header X-Forwarded-Proto $scheme;",
            "proxy_connect_timeout 30s;",
            "proxy_read_timeout 30s;",
            "proxy_send_timeout 30s;",
            # upstream connections reused, dropped idle well before the app drops them
            "keepalive 32;",
            "keepalive_timeout 10s;",
            'proxy_set_header Connection "";',
            "server app:8000 max_fails=1 fail_timeout=10s;",
            "return 301 https://$host$request_uri;",
            "proxy_pass http://statebridge/api/stateless/;",
            "proxy_pass http://statebridge/api/stateful/;",
        ):
            assert line in text, line
        for port in ("listen 80;", "listen 443 ssl;", "listen 3001;", "listen 3002;"):
            assert port in text
        assert "non_idempotent" not in text  # POSTs are never sent twice
        assert "{{" not in text
    assert "max-age=31536000" in render(NginxOptions(prod=True))


def test_several_upstreams_and_loopback_listeners() -> None:
    text = render(
        NginxOptions(upstreams=("127.0.0.1:9001", "[::1]:9002"), listen_address="127.0.0.1")
    )
    assert "server 127.0.0.1:9001 " in text and "server [::1]:9002 " in text
    assert "listen 127.0.0.1:443 ssl;" in text


@pytest.mark.parametrize("committed", ["nginx.conf", "nginx.prod.conf"])
def test_committed_renders_switch_http2_as_the_targeted_nginx_does(committed: str) -> None:
    """The compose files run nginx 1.27, where `listen ... http2` is deprecated."""
    text = (ROOT / "nginx" / committed).read_text()
    assert "# change the template (and re-render), not this file. Written for nginx 1.27" in text
    assert re.search(r"^ +listen 443 ssl;\n +http2 on;$", text, flags=re.MULTILINE)
    assert "http2;" not in text.replace("http2 on;", "")


@pytest.mark.parametrize(
    ("version", "listen", "directive"),
    [("1.22.1", "ssl http2;", False), ("1.25.0", "ssl http2;", False), ("1.25.1", "ssl;", True)],
)
def test_http2_takes_the_form_of_the_nginx_rendered_for(
    version: str, listen: str, directive: bool
) -> None:
    text = render(NginxOptions(nginx_version=version))
    assert f"listen 443 {listen}" in text
    assert ("http2 on;" in text) is directive


@pytest.mark.parametrize(
    "options",
    [
        NginxOptions(nginx_version="1.x"),
        NginxOptions(upstreams=()),
        NginxOptions(upstreams=("app:8000; evil",)),
        NginxOptions(upstreams=("app",)),
        NginxOptions(rate="fast"),
        NginxOptions(https_port=80),
        NginxOptions(http_port=0),
        NginxOptions(cert="/etc/my certs/cert.pem"),
        NginxOptions(key='/k";'),
        NginxOptions(listen_address="0.0.0.0; x"),
        NginxOptions(burst=-1),
        NginxOptions(burst=5, delay=6),
    ],
)
def test_render_refuses_options_that_break_the_config(options: NginxOptions) -> None:
    with pytest.raises(RenderError):
        render(options)


def test_the_render_command_reports_bad_options_in_one_line() -> None:
    done = statebridge("deploy", "nginx", "--upstream", "x;y")
    assert done.returncode == 2
    assert done.stderr.startswith("statebridge: upstream 'x;y' is not HOST:PORT")


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
@pytest.mark.parametrize("flags", [[], ["--prod"]], ids=["dev", "prod"])
def test_both_profiles_load_in_a_real_nginx(flags: list[str], tmp_path: Path) -> None:
    assert statebridge("deploy", "certs", str(tmp_path / "ssl")).returncode == 0
    conf = tmp_path / "nginx.conf"
    ports = [str(free_port()) for _ in range(4)]
    done = statebridge(
        "deploy", "nginx", *flags,
        "--upstream", f"127.0.0.1:{free_port()}",
        "--listen", "127.0.0.1",
        "--http-port", ports[0], "--https-port", ports[1],
        "--stateless-port", ports[2], "--stateful-port", ports[3],
        "--cert", str(tmp_path / "ssl" / "cert.pem"),
        "--key", str(tmp_path / "ssl" / "key.pem"),
        "--runtime-dir", str(tmp_path / "run"),
        "--nginx-version", installed_version(),
        "--out", str(conf),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = tmp_path / "run"
    checked = subprocess.run(
        [
            NGINX or "nginx",
            "-t",
            "-p",
            str(run),
            "-e",
            str(run / "logs" / "error.log"),
            "-c",
            str(conf),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr
    # rendered for the installed nginx: no deprecated directive, nothing else to warn about
    assert "[warn]" not in checked.stderr and "deprecated" not in checked.stderr, checked.stderr


# --- certificates ------------------------------------------------------------------------


def test_certs_command_writes_a_usable_self_signed_pair(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    target = tmp_path / "ssl"
    done = statebridge(
        "deploy", "certs", str(target), "--host", "example.test", "--host", "10.1.2.3"
    )
    assert done.returncode == 0, done.stderr
    cert_pem, key_path = (target / "cert.pem").read_bytes(), target / "key.pem"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(cert_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["example.test"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["10.1.2.3"]
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()

    again = statebridge("deploy", "certs", str(target))
    assert again.returncode == 0 and "kept" in again.stdout
    assert (target / "cert.pem").read_bytes() == cert_pem
    forced = statebridge("deploy", "certs", str(target), "--force")
    assert forced.returncode == 0 and "created" in forced.stdout
    assert (target / "cert.pem").read_bytes() != cert_pem


def test_certs_default_to_localhost_and_loopback(tmp_path: Path) -> None:
    from cryptography import x509

    assert statebridge("deploy", "certs", str(tmp_path)).returncode == 0
    cert = x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}


# --- compose -----------------------------------------------------------------------------


def compose_config(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if COMPOSE is None:
        pytest.skip("docker-compose is not installed (scripts/ci-install-nginx.sh installs it)")
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("POSTGRES_", "REDIS_"))
    }
    return subprocess.run(
        [COMPOSE, "-f", str(ROOT / name), "config"],
        capture_output=True,
        text=True,
        env={**base, **env},
        cwd=ROOT,
        check=False,
    )


def services_of(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    services: dict[str, Any] = yaml.safe_load(done.stdout)["services"]
    return services


def test_development_compose_is_valid_and_as_in_the_guide() -> None:
    services = services_of(compose_config("docker-compose.yml", {}))
    assert services["postgres"]["image"] == "postgres:15"
    assert services["redis"]["image"].startswith("redis:7")
    assert "--appendonly yes" in " ".join(services["redis"]["command"])
    assert {"app", "nginx"} <= set(services)
    app = services["app"]
    assert app["environment"]["STATEBRIDGE_MIGRATE"] == "1"  # Alembic, not hand-kept SQL
    assert app["environment"]["DATABASE_URL"].startswith("postgresql://")
    mounts = json.dumps(services["postgres"].get("volumes", []))
    assert "docker-entrypoint-initdb.d" not in mounts
    nginx_mounts = json.dumps(services["nginx"]["volumes"])
    assert "nginx/nginx.conf" in nginx_mounts and "nginx/ssl" in nginx_mounts


def test_development_ports_come_from_the_default_override() -> None:
    """`docker-compose up` (no -f) reads docker-compose.override.yml and publishes the ports;
    docker-compose.yml alone publishes none, so it also runs on the host's network."""
    alone = services_of(compose_config("docker-compose.yml", {}))
    assert all(not service.get("ports") for service in alone.values())
    assert COMPOSE is not None
    default = subprocess.run(
        [COMPOSE, "config"], capture_output=True, text=True, cwd=ROOT, check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "REDIS_"))},
    )  # fmt: skip
    services = services_of(default)
    for name, port in (("postgres", 5432), ("redis", 6379), ("app", 8000)):
        # "127.0.0.1:5432:5432/tcp": on the loopback address only
        assert services[name]["ports"] == [f"127.0.0.1:{port}:{port}/tcp"], services[name]
    nginx = {int(port["published"]) for port in services["nginx"]["ports"]}
    assert nginx == {80, 443, 3001, 3002}


# What both docker-compose 1.29 (the compose-spec schema it ships) and Compose v2 accept: v2
# reads every key of that older schema; v1 knows no top-level `name` or `include`, and v2
# warns that `version` is obsolete.
COMPOSE_TOP_LEVEL = {"services", "networks", "volumes", "secrets", "configs"}
COMPOSE_SERVICE_KEYS = {
    "blkio_config", "build", "cap_add", "cap_drop", "cgroup_parent", "command", "configs",
    "container_name", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota", "cpu_rt_period",
    "cpu_rt_runtime", "cpu_shares", "cpus", "cpuset", "credential_spec", "depends_on", "deploy",
    "device_cgroup_rules", "devices", "dns", "dns_opt", "dns_search", "domainname", "entrypoint",
    "env_file", "environment", "expose", "extends", "external_links", "extra_hosts", "group_add",
    "healthcheck", "hostname", "image", "init", "ipc", "isolation", "labels", "links", "logging",
    "mac_address", "mem_limit", "mem_reservation", "mem_swappiness", "memswap_limit",
    "network_mode", "networks", "oom_kill_disable", "oom_score_adj", "pid", "pids_limit",
    "platform", "ports", "privileged", "profiles", "pull_policy", "read_only", "restart",
    "runtime", "scale", "secrets", "security_opt", "shm_size", "stdin_open", "stop_grace_period",
    "stop_signal", "storage_opt", "sysctls", "tmpfs", "tty", "ulimits", "user", "userns_mode",
    "volumes", "volumes_from", "working_dir",
}  # fmt: skip
COMPOSE_FILES = [
    "docker-compose.yml",
    "docker-compose.override.yml",
    "docker-compose.prod.yml",
    "tests/containers/compose.override.yml",
    "tests/containers/compose.prod.override.yml",
]


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_files_suit_compose_v1_and_v2(name: str) -> None:
    document = yaml.safe_load((ROOT / name).read_text())
    assert "version" not in document, f"{name}: `version` is obsolete (Compose v2 warns)"
    top = {key for key in document if not str(key).startswith("x-")}
    assert top <= COMPOSE_TOP_LEVEL, f"{name}: {top - COMPOSE_TOP_LEVEL}"
    for service, body in document["services"].items():
        keys = {key for key in body if not str(key).startswith("x-")}
        assert keys <= COMPOSE_SERVICE_KEYS, f"{name}: {service}: {keys - COMPOSE_SERVICE_KEYS}"
        depends = body.get("depends_on", {})
        if isinstance(depends, dict):  # the long form: the compose-spec wants a condition each
            assert all("condition" in entry for entry in depends.values()), service


def test_production_compose_needs_every_secret() -> None:
    for missing in PROD_ENV:
        env = {key: value for key, value in PROD_ENV.items() if key != missing}
        done = compose_config("docker-compose.prod.yml", env)
        assert done.returncode != 0
        assert f"set {missing}" in done.stderr


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.prod.yml"])
def test_docker_waits_for_the_apps_graceful_stop(name: str) -> None:
    """`docker stop` kills after 10 s by default; the app's stop may take its grace period
    and then the last short wait before Granian's workers are killed."""
    env = PROD_ENV if "prod" in name else {}
    grace = services_of(compose_config(name, env))["app"]["stop_grace_period"]
    seconds = int(str(grace).removesuffix("s"))
    assert seconds > granian_server.GRACE_SECONDS + granian_server.KILL_SECONDS, grace


def published(service: dict[str, Any]) -> list[Any]:
    return list(service.get("ports", []))


def test_production_compose_is_locked_down_and_scalable() -> None:
    services = services_of(compose_config("docker-compose.prod.yml", PROD_ENV))
    for name in ("postgres", "redis", "app", "nginx"):
        assert services[name]["restart"] == "unless-stopped", name
    for name in ("postgres", "redis", "app", "migrate"):
        assert published(services[name]) == [], f"{name} must not publish a port"
    assert {int(port["published"]) for port in published(services["nginx"])} == {
        80,
        443,
        3001,
        3002,
    }
    app = services["app"]
    assert "container_name" not in app  # `--scale app=N` needs generated names
    environment = app["environment"]
    assert environment["DATABASE_URL"] == (
        "postgresql://sb_user:pg-secret@postgres:5432/network_assignment"
    )
    assert environment["REDIS_URL"] == "redis://:r-s3@redis:6379/0"
    assert environment["STATEBRIDGE_MIGRATE"] == "0"
    redis = services["redis"]
    assert "--requirepass" in " ".join(redis["command"])
    assert redis["environment"]["REDISCLI_AUTH"] == "r-s3"
    assert services["migrate"]["command"] == ["statebridge", "db", "upgrade"]
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "nginx.prod.conf" in json.dumps(services["nginx"]["volumes"])


# --- Dockerfile ----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    starts = [index for index, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    return instructions[starts[-1] :]


def test_dockerfile_is_multi_stage_slim_and_non_root() -> None:
    instructions = dockerfile_instructions()
    args = dict(rest.split("=", 1) for keyword, rest in instructions if keyword == "ARG")
    assert "slim" in args["PYTHON_IMAGE"]
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(froms) >= 2
    stage = final_stage()
    body = " ".join(rest for _, rest in stage)
    assert not re.search(r"build-essential|gcc|apt-get install", body)
    (user,) = [rest for keyword, rest in stage if keyword == "USER"]
    assert user.split(":")[0] not in ("root", "0")
    env = " ".join(rest for keyword, rest in stage if keyword == "ENV")
    assert "STATEBRIDGE_HOST=0.0.0.0" in env


def test_dockerfile_healthcheck_probes_readiness(tmp_path: Path) -> None:
    (check,) = [rest for keyword, rest in final_stage() if keyword == "HEALTHCHECK"]
    assert "/health/ready" in check
    command = check.split(" CMD ", 1)[1]
    server = Server(
        env={}, data_dir=tmp_path, args=["--stateless-port", "0", "--stateful-port", "0"]
    )
    server.start()
    env = clean_env(
        {
            "STATEBRIDGE_PORT": str(server.port),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        }
    )
    try:
        ready = httpx.get(f"{server.url}/health/ready", timeout=10).status_code == 200
        probe = subprocess.run(
            ["/bin/sh", "-c", command], env=env, capture_output=True, check=False
        )
        assert (probe.returncode == 0) == ready
    finally:
        server.stop()
    down = subprocess.run(["/bin/sh", "-c", command], env=env, capture_output=True, check=False)
    assert down.returncode != 0


def test_the_image_installs_the_locked_versions() -> None:
    """The build stage copies requirements.lock and installs the project constrained by it."""
    instructions = dockerfile_instructions()
    copies = " ".join(rest for keyword, rest in instructions if keyword == "COPY")
    assert "requirements.lock" in copies.split()
    runs = [rest for keyword, rest in instructions if keyword == "RUN"]
    installs = [
        command
        for run in runs
        for command in run.split("&&")
        if re.search(r"pip install (?!--upgrade pip)", command)
    ]
    assert installs, runs
    for command in installs:
        assert re.search(r"pip install -c requirements\.lock \.\s*$", command), command


def runtime_requirements() -> dict[str, str]:
    """Every package `pip install .` brings (dependencies of dependencies included, their
    extras and markers followed), by normalised name: pyproject.toml's dependencies, then
    the metadata of what is installed here."""
    import tomllib
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found: dict[str, str] = {}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [(Requirement(text), "") for text in project["dependencies"]]
    # this Python, and the oldest that requires-python admits (Debian bookworm has 3.11.2)
    pythons = [{}, {"python_version": "3.11", "python_full_version": "3.11.0"}]
    while todo:
        requirement, extra = todo.pop()
        marker = requirement.marker
        if marker and not any(marker.evaluate({**env, "extra": extra}) for env in pythons):
            continue
        name = canonicalize_name(requirement.name)
        if name == "statebridge":
            continue
        seen = name in found
        try:
            found[name] = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:  # not needed by this Python: pinned all the same
            found[name] = ""
            continue
        for wanted in ([""] if not seen else []) + sorted(requirement.extras):
            for text in metadata.requires(requirement.name) or []:
                todo.append((Requirement(text), wanted))
    return found


def test_the_lock_pins_every_runtime_dependency() -> None:
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    needed = runtime_requirements()
    assert {"uvicorn", "httptools", "fastapi", "starlette", "hiredis"} <= set(needed)
    missing = sorted(set(needed) - set(pins))
    assert missing == [], f"requirements.lock does not pin {missing}: run scripts/lock"


def test_no_dependency_brings_what_nothing_uses() -> None:
    """uvicorn[standard] would bring a WebSocket library, a file watcher and YAML: statebridge
    takes uvicorn alone, plus the parser and event loop it does use."""
    needed = runtime_requirements()
    assert {"uvicorn", "httptools", "uvloop"} <= set(needed)
    unused = {"websockets", "wsproto", "watchfiles", "pyyaml"} & set(needed)
    assert unused == set(), f"nothing in statebridge uses {sorted(unused)}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", "serve --migrate"), ("true", "serve --migrate"), ("0", "serve"), ("", "serve")],
)
def test_dockerfile_migrates_only_when_asked(value: str, expected: str, tmp_path: Path) -> None:
    (cmd,) = [rest for keyword, rest in final_stage() if keyword == "CMD"]
    argv = json.loads(cmd)
    fake = tmp_path / "statebridge"
    fake.write_text('#!/bin/sh\necho "$@"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "STATEBRIDGE_MIGRATE": value}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    assert done.stdout.strip() == expected


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in (".git", ".venv", ".env", "data", "nginx/ssl"):
        assert needed in patterns, needed
    for copied in ("pyproject.toml", "README.md", "requirements.lock", "statebridge"):
        assert copied not in patterns, copied


# --- configuration ---------------------------------------------------------------------------


def env_names(name: str, info: Any) -> list[str]:
    alias = info.validation_alias
    if alias is not None and hasattr(alias, "choices"):
        return [str(choice) for choice in alias.choices]
    return [f"STATEBRIDGE_{name.upper()}"]


def test_env_example_documents_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^# ([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))
    missing = [
        name
        for name, info in Settings.model_fields.items()
        if not documented.intersection(env_names(name, info))
    ]
    assert missing == [], f"add these settings to .env.example: {missing}"


def test_forwarded_headers_are_believed_only_from_allowed_proxies(tmp_path: Path) -> None:
    """The access log records the client and scheme the app believed."""
    assert Settings().forwarded_allow_ips == "127.0.0.1"
    forwarded = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    seen = []
    for allowed in ("127.0.0.1", "192.0.2.1"):
        server = Server(
            env={"STATEBRIDGE_FORWARDED_ALLOW_IPS": allowed},
            data_dir=tmp_path / allowed,
            args=["--stateless-port", "0", "--stateful-port", "0"],
        ).start()
        try:
            marker = f"forwarded-{allowed}"
            response = httpx.get(
                f"{server.url}/info", headers={**forwarded, "X-Request-ID": marker}, timeout=10
            )
            assert response.status_code == 200
        finally:
            server.stop()
        lines = [json.loads(line) for line in server.log().splitlines() if marker in line]
        assert len(lines) == 1, server.log()
        seen.append((lines[0]["client"], lines[0]["scheme"]))
    assert seen == [("203.0.113.9", "https"), ("127.0.0.1", "http")]


def test_the_production_compose_file_has_an_optional_monitoring_profile() -> None:
    services = services_of(compose_config("docker-compose.prod.yml", PROD_ENV))
    prometheus, alertmanager = services["prometheus"], services["alertmanager"]
    assert prometheus["image"].startswith("prom/prometheus:v2.")
    assert alertmanager["image"].startswith("prom/alertmanager:v0.")
    for name in ("prometheus", "alertmanager"):
        assert services[name]["profiles"] == ["monitoring"], name
        assert services[name]["restart"] == "unless-stopped", name
        # published on the host's loopback alone, never to the network
        assert all(str(port).startswith("127.0.0.1:") for port in services[name]["ports"]), name
    for name in ("postgres", "redis", "migrate", "app", "nginx"):
        assert "profiles" not in services[name], name  # started as before, without the profile
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in prometheus["volumes"]}
    config = Path(mounts["/etc/prometheus"]) / "prometheus.yml"
    assert config == ROOT / "deploy" / "monitoring" / "prometheus.yml"
    assert any(
        arg == "--config.file=/etc/prometheus/prometheus.yml" for arg in prometheus["command"]
    )
    mounted = {volume.split(":")[1]: volume.split(":")[0] for volume in alertmanager["volumes"]}
    assert (
        Path(mounted["/etc/alertmanager/alertmanager.yml"])
        == ROOT / "deploy" / "monitoring" / "alertmanager.yml"
    )
    # what prometheus.yml names is what compose runs: the app replicas and Alertmanager
    scrape = yaml.safe_load(config.read_text())
    assert scrape["scrape_configs"][0]["dns_sd_configs"][0]["names"] == ["app"]
    assert scrape["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093"
    ]
    assert "8000" in services["app"]["expose"]


def test_the_license_is_stated_in_the_current_pyproject_form() -> None:
    """PEP 639: an SPDX expression (the wheel's License-Expression), the license files by
    name, and a setuptools that understands both."""
    import tomllib

    from packaging.requirements import Requirement

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    assert project["license"] == "MIT"
    assert not any(c.startswith("License ::") for c in project.get("classifiers", []))
    files = sorted(path.name for path in ROOT.glob("LICEN[CS]E*"))
    assert project.get("license-files", []) == files
    (setuptools,) = [
        Requirement(text)
        for text in pyproject["build-system"]["requires"]
        if text.startswith("setuptools")
    ]
    assert not setuptools.specifier.contains("76.1") and setuptools.specifier.contains("77.0.3")


def test_a_render_for_the_installed_nginx(tmp_path: Path) -> None:
    """`--nginx-version installed` writes HTTP/2 the way the nginx on PATH takes it; with no
    nginx to ask, one clear line."""
    with pytest.raises(RenderError, match="no nginx program on PATH"):
        installed_nginx_version(search=str(tmp_path))
    if NGINX is None:
        pytest.skip("nginx is not installed (scripts/ci-install-nginx.sh installs it)")
    done = statebridge("deploy", "nginx", "--nginx-version", "installed")
    assert done.returncode == 0, done.stderr
    assert done.stdout == render(NginxOptions(nginx_version=installed_version()))
