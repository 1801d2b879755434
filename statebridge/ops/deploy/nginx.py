"""Render the nginx configuration from the templates shipped in this package.

The files in the repository's nginx/ directory are renders with the compose defaults, and the
tests render the same templates for loopback ports: one source, so the two never drift.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePosixPath

from statebridge.asgi.headers import SECURITY_HEADERS
from statebridge.observability.requests import SANE_REQUEST_ID

PLACEHOLDER = re.compile(r"\{\{ *([a-z][a-z0-9_]*) *\}\}")
UPSTREAM = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$")
RATE = re.compile(r"^[1-9][0-9]*r/[sm]$")
ADDRESS = re.compile(r"^(?:[0-9.]+|\[[0-9A-Fa-f:.]+\])$")
UNSAFE_IN_PATH = re.compile(r"[\"\\;{}\s$]")
NGINX_VERSION = re.compile(r"^([0-9]+)\.([0-9]+)(?:\.([0-9]+))?$")
# The nginx the compose files run (nginx:1.27-alpine); `--nginx-version` renders for another.
TARGET_NGINX = "1.27"
# From nginx 1.25.1 HTTP/2 is switched on with `http2 on;`; `listen ... http2` is deprecated
# there (a warning on every start) and the only form older releases know.
HTTP2_DIRECTIVE_SINCE = (1, 25, 1)


class RenderError(ValueError):
    """An option that would make a broken (or injected) nginx configuration."""


@dataclass(frozen=True)
class Profile:
    """What differs between the development and the production configuration."""

    name: str
    worker_processes: str
    server_name: str
    hsts_max_age: int
    access_log_options: str


DEV = Profile("development", "1", "localhost", 3600, "")
# A year of HSTS only where a real certificate is served; buffered access log for throughput.
PROD = Profile("production", "auto", "_", 31536000, " buffer=32k flush=5s")


@dataclass(frozen=True)
class NginxOptions:
    """Everything a render depends on; the defaults are the ones the compose files use."""

    upstreams: tuple[str, ...] = ("app:8000",)
    http_port: int = 80
    https_port: int = 443
    stateless_port: int = 3001
    stateful_port: int = 3002
    listen_address: str = ""
    cert: str = "/etc/nginx/ssl/cert.pem"
    key: str = "/etc/nginx/ssl/key.pem"
    rate: str = "10r/s"
    burst: int = 20
    delay: int = 10
    prod: bool = False
    server_name: str = ""
    runtime_dir: str = ""
    nginx_version: str = TARGET_NGINX

    @property
    def profile(self) -> Profile:
        return PROD if self.prod else DEV


def template(name: str) -> str:
    return (resources.files("statebridge.ops.deploy") / "templates" / name).read_text("utf-8")


def check(options: NginxOptions) -> None:
    if not options.upstreams:
        raise RenderError("at least one --upstream is needed")
    for upstream in options.upstreams:
        if not UPSTREAM.match(upstream):
            raise RenderError(f"upstream {upstream!r} is not HOST:PORT")
    ports = [options.http_port, options.https_port, options.stateless_port, options.stateful_port]
    if any(not 1 <= port <= 65535 for port in ports):
        raise RenderError("ports must be between 1 and 65535")
    if len(set(ports)) != len(ports):
        raise RenderError("the four listening ports must differ")
    if not RATE.match(options.rate):
        raise RenderError(f"rate {options.rate!r} is not like 10r/s or 600r/m")
    if options.burst < 0:
        raise RenderError("burst must be zero or more")
    if not 0 <= options.delay <= options.burst:
        raise RenderError("delay must be between 0 and the burst")
    if options.listen_address and not ADDRESS.match(options.listen_address):
        raise RenderError(f"listen address {options.listen_address!r} is not an IP address")
    if options.server_name and not re.match(r"^[A-Za-z0-9._*~-]+$", options.server_name):
        raise RenderError(f"server name {options.server_name!r} is not a host name")
    paths = (("cert", options.cert), ("key", options.key), ("runtime dir", options.runtime_dir))
    for label, path in paths:
        if UNSAFE_IN_PATH.search(path):
            raise RenderError(f"{label} path {path!r} has spaces, quotes, ';', '$' or braces")


INSTALLED = "installed"  # `--nginx-version installed`: the version of the nginx on PATH


def installed_nginx_version(search: str | None = None) -> str:
    """The version of the nginx on PATH (or in /usr/sbin), from `nginx -v`; `search` is the
    list of folders to look in instead."""
    if search is None:
        found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    else:
        found = shutil.which("nginx", path=search)
    if found is None:
        raise RenderError("--nginx-version installed: no nginx program on PATH or in /usr/sbin")
    done = subprocess.run([found, "-v"], capture_output=True, text=True, check=False, timeout=10)
    match = re.search(r"nginx/([0-9]+\.[0-9]+(?:\.[0-9]+)?)", done.stderr + done.stdout)
    if match is None:
        raise RenderError(f"--nginx-version installed: cannot read a version from {found} -v")
    return match.group(1)


def nginx_version(text: str) -> tuple[int, int, int]:
    """`1.27` or `1.22.1` as a comparable triple; raises RenderError on anything else."""
    match = NGINX_VERSION.match(text)
    if match is None:
        raise RenderError(f"nginx version {text!r} is not like 1.27 or 1.22.1")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def http2_values(version: tuple[int, int, int]) -> dict[str, str]:
    """The HTTPS listener's HTTP/2 in the form `version` expects."""
    if version >= HTTP2_DIRECTIVE_SINCE:
        return {"https_listen_options": "ssl", "http2_directive": "\n        http2 on;"}
    return {"https_listen_options": "ssl http2", "http2_directive": ""}


HSTS = b"strict-transport-security"  # nginx's own: over HTTPS only, its age per profile


def header_name(name: bytes) -> str:
    return "-".join(part.capitalize() for part in name.decode().split("-"))


def security_header_values() -> dict[str, str]:
    """The app's security headers (statebridge/asgi/headers.py), sent by nginx as the app sent
    them: each copy from the app is hidden and added back, and an answer nginx makes itself
    (429, 502, 413...) gets the app's value, so every answer carries the same set."""
    maps, hides, adds = [], [], []
    for name, value in SECURITY_HEADERS:
        hides.append(f"    proxy_hide_header {header_name(name)};")
        if name == HSTS:
            continue
        if any(char in value for char in b'"$\\'):
            raise RenderError(f"the {name.decode()} value cannot be written in nginx.conf")
        variable = name.decode().replace("-", "_")
        maps.append(
            f"    map $upstream_http_{variable} $statebridge_{variable} {{\n"
            f'        "" "{value.decode()}";\n'
            f"        default $upstream_http_{variable};\n"
            "    }"
        )
        adds.append(f"        add_header {header_name(name)} $statebridge_{variable} always;")
    return {
        "security_header_maps": "\n".join(maps),
        "security_header_hides": "\n".join(hides),
        "security_header_adds": "\n".join(adds),
    }


def runtime_paths(runtime_dir: str) -> dict[str, str]:
    """Where nginx keeps its pid, temp files and logs: the official image's places, or one dir."""
    if not runtime_dir:
        return {
            "pid_path": "/var/run/nginx.pid",
            "temp_dir": "/var/cache/nginx",
            "error_log": "/var/log/nginx/error.log",
            "access_log_path": "/var/log/nginx/access.log",
        }
    base = PurePosixPath(runtime_dir)
    return {
        "pid_path": str(base / "nginx.pid"),
        "temp_dir": str(base / "temp"),
        "error_log": str(base / "logs" / "error.log"),
        "access_log_path": str(base / "logs" / "access.log"),
    }


def fill(text: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise RenderError(f"the template uses {{{{ {name} }}}}, which has no value")
        return values[name]

    return PLACEHOLDER.sub(replace, text)


def render(options: NginxOptions) -> str:
    """The nginx.conf text for `options`; raises RenderError on an unusable option."""
    check(options)
    version = nginx_version(options.nginx_version)
    profile = options.profile
    prefix = f"{options.listen_address}:" if options.listen_address else ""
    paths = runtime_paths(options.runtime_dir)
    values = {
        "profile": profile.name,
        "worker_processes": profile.worker_processes,
        "server_name": options.server_name or profile.server_name,
        "hsts_max_age": str(profile.hsts_max_age),
        "access_log": f"{paths.pop('access_log_path')} statebridge{profile.access_log_options}",
        **paths,
        "upstream_servers": "\n".join(
            f"        server {upstream} max_fails=1 fail_timeout=10s;"
            for upstream in options.upstreams
        ),
        "rate": options.rate,
        "burst": str(options.burst),
        "delay": str(options.delay),
        "http_listen": f"{prefix}{options.http_port}",
        "https_listen": f"{prefix}{options.https_port}",
        "stateless_listen": f"{prefix}{options.stateless_port}",
        "stateful_listen": f"{prefix}{options.stateful_port}",
        "https_port_suffix": "" if options.https_port == 443 else f":{options.https_port}",
        "cert": options.cert,
        "key": options.key,
        "nginx_version": options.nginx_version,
        **http2_values(version),
        **security_header_values(),
        "request_id_pattern": SANE_REQUEST_ID.pattern.decode(),
    }
    values["server_common"] = fill(template("server-common.conf.template"), values).rstrip("\n")
    return fill(template("nginx.conf.template"), values)
