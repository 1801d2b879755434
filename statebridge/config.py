"""Settings, read from the environment and an optional `.env` file."""

from __future__ import annotations

import json
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from annotated_types import Ge, Gt, Le, Lt
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

DATABASE_SCHEMES = (
    "postgresql://",
    "postgres://",
    "postgresql+asyncpg://",
    "sqlite://",
    "sqlite+aiosqlite://",
)
DATABASE_ACCEPTED = (
    "a postgresql:// URL, or sqlite:///PATH (unset: the embedded SQLite file in the data directory)"
)
REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://", "redis+cluster://")
REDIS_ACCEPTED = (
    "a redis://, rediss:// or unix:// URL, redis+sentinel://[:password@]host:port[,host:port...]"
    "/service[/db] or redis+cluster://[:password@]host:port[,host:port...] (unset: no Redis)"
)
ORIGINS_ACCEPTED = "origins separated by commas, or a JSON list of strings"
POSTGRES_SCHEMES = ("postgresql://", "postgres://", "postgresql+asyncpg://")
POSTGRES_ACCEPTED = "a postgresql:// URL (unset: none)"
DIRECT_URL_NEEDED = (
    "DATABASE_URL goes through a transaction pooler (STATEBRIDGE_DATABASE_POOLER=transaction): "
    "schema changes need PostgreSQL itself; set DATABASE_DIRECT_URL to its direct address"
)


@dataclass(frozen=True)
class RedisAddress:
    """What REDIS_URL names: one server (`single`: redis://, rediss://, unix://, given to
    redis-py as it is), a master found through Sentinel (`sentinel`: `hosts` are the
    sentinels, `service` the master's name) or a Redis Cluster (`cluster`: `hosts` are
    the nodes to start from)."""

    kind: Literal["single", "sentinel", "cluster"]
    url: str
    hosts: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None  # ?sentinel_password=: the sentinels' own


def redis_address(url: str) -> RedisAddress:
    """REDIS_URL parsed; a ValueError saying what is wrong with it otherwise."""
    url = url.strip()
    scheme, _, rest = url.partition("://")
    if scheme in ("redis", "rediss", "unix"):
        parts = urlsplit(url)
        password = unquote(parts.password) if parts.password else None
        username = unquote(parts.username) if parts.username else None
        return RedisAddress("single", url, username=username, password=password)
    if scheme not in ("redis+sentinel", "redis+cluster"):
        raise ValueError(REDIS_ACCEPTED)
    netloc, _, tail = rest.partition("/")
    path, _, query = tail.partition("?")
    userinfo, _, hostlist = netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    hosts = tuple(redis_host(item, scheme) for item in hostlist.split(","))
    segments = [segment for segment in path.split("/") if segment]
    options = {key: values[-1] for key, values in parse_qs(query).items()}
    user, secret = unquote(username) or None, unquote(password) or None
    if scheme == "redis+cluster":
        if segments and segments != ["0"]:
            raise ValueError(f"{scheme}:// takes no database number (a cluster has only db 0)")
        return RedisAddress("cluster", url, hosts, username=user, password=secret)
    if not segments or len(segments) > 2 or (len(segments) == 2 and not segments[1].isdigit()):
        raise ValueError(f"{scheme}:// needs the master's name: .../<service-name>[/<db>]")
    return RedisAddress(
        "sentinel",
        url,
        hosts,
        service=unquote(segments[0]),
        db=int(segments[1]) if len(segments) == 2 else 0,
        username=user,
        password=secret,
        sentinel_password=options.get("sentinel_password"),
    )


def redis_host(item: str, scheme: str) -> tuple[str, int]:
    host, _, port = item.strip().rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{scheme}:// needs host:port pairs separated by commas, not {item!r}")
    return host, int(port)


class Settings(BaseSettings):
    """Every knob of a statebridge process; see the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="STATEBRIDGE_", env_file=".env", extra="ignore", populate_by_name=True
    )

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    stateless_port: int = Field(3001, ge=0, le=65535)
    stateful_port: int = Field(3002, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)

    database_url: str = Field(
        "", validation_alias=AliasChoices("DATABASE_URL", "STATEBRIDGE_DATABASE_URL")
    )
    # PgBouncer in transaction mode between the app and PostgreSQL: no prepared statement
    # outlives its transaction, no LISTEN, and schema changes go to DATABASE_DIRECT_URL
    database_pooler: Literal["none", "transaction"] = Field(
        "none", description="transaction: DATABASE_URL is a PgBouncer in transaction mode"
    )
    database_direct_url: str = Field(
        "",
        validation_alias=AliasChoices("DATABASE_DIRECT_URL", "STATEBRIDGE_DATABASE_DIRECT_URL"),
        description="PostgreSQL itself, past the pooler: schema upgrades, LISTEN",
    )
    database_read_url: str = Field(
        "",
        validation_alias=AliasChoices("DATABASE_READ_URL", "STATEBRIDGE_DATABASE_READ_URL"),
        description="a streaming replica for catalog reads (the primary when it is down)",
    )
    redis_url: str = Field("", validation_alias=AliasChoices("REDIS_URL", "STATEBRIDGE_REDIS_URL"))
    data_dir: Path = Path("data")
    session_backend: Literal["auto", "sql", "redis", "memory"] = "auto"

    session_ttl: int = Field(900, ge=1, description="idle seconds before a session expires")
    session_max_lifetime: int = Field(86400, ge=1, description="absolute session lifetime, s")
    # the key of the HMAC that session ids are kept under (statebridge/db/sessionkeys.py);
    # _PREVIOUS: the one before a rotation, still accepted for lookups
    session_secret: SecretStr | None = None
    session_secret_previous: SecretStr | None = None
    session_db_refresh: int = Field(
        60, ge=1, description="how stale the database copy of expiresAt may get (Redis backend)"
    )
    sweep_interval: int = Field(60, ge=1)
    max_body_bytes: int = 1024 * 1024
    max_json_depth: int = Field(32, ge=2)
    max_session_data_bytes: int = Field(64 * 1024, ge=1024)
    max_preferences_bytes: int = Field(16 * 1024, ge=256)

    # comma-separated in the environment (a JSON list works too): NoDecode keeps
    # pydantic-settings from insisting on JSON before _split_origins sees the text
    cors_origins: Annotated[list[str], NoDecode] = ["*"]
    seed: Literal["auto", "never"] = "auto"
    instance_id: str = ""
    debug: bool = Field(False, validation_alias=AliasChoices("DEBUG", "STATEBRIDGE_DEBUG"))
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    log_format: Literal["json", "text"] = "json"
    access_log: bool = True
    http_server: Literal["auto", "granian", "uvicorn"] = Field(
        "auto", description="auto: Granian when installed, else uvicorn"
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="proxies whose X-Forwarded-For/-Proto are believed: IPs, CIDRs, or *",
    )

    env: Literal["development", "production"] = "development"
    session_cookie: bool = False
    session_cookie_name: str = Field("session_id", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    session_cookie_secure: bool = True
    ready_timeout: float = Field(2.0, gt=0, le=30)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                try:
                    return json.loads(value)
                except ValueError:
                    raise ValueError(ORIGINS_ACCEPTED) from None
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        url = value.strip()
        if url and not url.startswith(DATABASE_SCHEMES):
            raise ValueError(DATABASE_ACCEPTED)
        return value

    @field_validator("database_direct_url", "database_read_url")
    @classmethod
    def _postgres_only(cls, value: str) -> str:
        url = value.strip()
        if url and not url.startswith(POSTGRES_SCHEMES):
            raise ValueError(POSTGRES_ACCEPTED)
        return value

    @field_validator("redis_url")
    @classmethod
    def _known_redis(cls, value: str) -> str:
        url = value.strip()
        if url and not url.startswith(REDIS_SCHEMES):
            raise ValueError(REDIS_ACCEPTED)
        if url:
            redis_address(url)  # a ValueError names what is wrong
        return value

    @cached_property
    def effective_database_url(self) -> str:
        """The SQLAlchemy URL: DATABASE_URL made async, or the embedded SQLite file."""
        url = self.database_url.strip()
        if not url:
            return f"sqlite+aiosqlite:///{(self.data_dir / 'statebridge.db').resolve()}"
        return async_url(url)

    @property
    def pooled(self) -> bool:
        """DATABASE_URL is a transaction pooler (PgBouncer): no statement cache, no LISTEN."""
        return self.database_pooler == "transaction" and not self.embedded

    @property
    def direct_url(self) -> str:
        """PostgreSQL itself: DATABASE_DIRECT_URL, else DATABASE_URL unless that is a pooler
        ("" then: nothing reaches PostgreSQL past the pooler)."""
        if self.database_direct_url.strip():
            return async_url(self.database_direct_url.strip())
        return "" if self.pooled else self.effective_database_url

    @property
    def schema_url(self) -> str:
        """Where schema changes go; behind a transaction pooler without DATABASE_DIRECT_URL,
        ValueError(DIRECT_URL_NEEDED)."""
        if not self.direct_url:
            raise ValueError(DIRECT_URL_NEEDED)
        return self.direct_url

    @property
    def read_url(self) -> str:
        """A replica for catalog reads (DATABASE_READ_URL), or ""."""
        url = self.database_read_url.strip()
        return async_url(url) if url and not self.embedded else ""

    @property
    def embedded(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def production_problem(self) -> str | None:
        """Why these settings are unfit for production (STATEBRIDGE_ENV=production), or None.

        Production never runs on defaulted secrets: a database or Redis without a password,
        a wildcard CORS origin beside cookie sessions, DEBUG on, or a missing, short or
        development STATEBRIDGE_SESSION_SECRET."""
        if self.env != "production":
            return None
        if self.session_backend == "memory":
            return (
                "production refuses STATEBRIDGE_SESSION_BACKEND=memory: a session would live "
                "in one process only, lost on another instance or a restart"
            )
        if self.embedded:
            return "production needs DATABASE_URL (PostgreSQL with a password)"
        if not make_url(self.effective_database_url).password:
            return "production refuses a DATABASE_URL without a password"
        if self.redis_url and not redis_address(self.redis_url).password:
            return "production refuses a REDIS_URL without a password"
        if self.session_cookie and "*" in self.cors_origins:
            return "production refuses STATEBRIDGE_CORS_ORIGINS=* with cookie sessions"
        if self.debug:
            return "production refuses DEBUG on"
        secret = self.session_secret.get_secret_value() if self.session_secret else ""
        if len(secret) < SECRET_LENGTH or secret == DEVELOPMENT_SECRET:
            return SECRET_NEEDED
        return None

    @property
    def effective_session_backend(self) -> str:
        if self.session_backend != "auto":
            return self.session_backend
        return "redis" if self.redis_url else "sql"


SECRET_LENGTH = 32
DEVELOPMENT_SECRET = "statebridge-development-session-secret"  # refused in production
SECRET_NEEDED = "production needs STATEBRIDGE_SESSION_SECRET (32 characters or more)"


def async_url(url: str) -> str:
    """A database URL with the async driver SQLAlchemy needs (asyncpg, aiosqlite)."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url[len(plain) :]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


def setting_problems(error: ValidationError, options: Mapping[str, str] | None = None) -> str:
    """A ValidationError of Settings as one line: each bad setting as `NAME='value' is not
    accepted: what is`, NAME being the environment variable, or the command-line option
    (`options` maps field names to the options given)."""
    options = options or {}
    parts = []
    for problem in error.errors():
        field = field_of(str(problem["loc"][0]) if problem["loc"] else "")
        if field is None:
            parts.append(problem["msg"])
            continue
        name = options.get(field) or variable_of(field)
        value = shown_value(field, problem.get("input"))
        parts.append(f"{name}={value} is not accepted: {accepted(field, problem)}")
    return "; ".join(parts)


def field_of(location: str) -> str | None:
    """The Settings field an error location names: the field itself or one of its aliases."""
    if location in Settings.model_fields:
        return location
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices) and location in alias.choices:
            return name
    return None


def variable_of(field: str) -> str:
    """The environment variable of a field: of several aliases, the one that is set."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        names = [str(choice) for choice in alias.choices]
        return next((name for name in names if name in os.environ), names[0])
    return f"{Settings.model_config.get('env_prefix', '')}{field}".upper()


def shown_value(field: str, value: Any) -> str:
    """The value as given, quoted; a URL's password hidden, a long value cut short."""
    urls = ("database_url", "database_direct_url", "database_read_url", "redis_url")
    if field in urls and isinstance(value, str):
        parts = urlsplit(value.strip())
        if parts.password:
            value = value.replace(f":{parts.password}@", ":***@", 1)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def accepted(field: str, problem: Mapping[str, Any]) -> str:
    """What the field takes, in words."""
    error = (problem.get("ctx") or {}).get("error")
    if problem.get("type") == "value_error" and error is not None:
        return str(error)
    info = Settings.model_fields[field]
    annotation = info.annotation
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(str(choice) for choice in typing.get_args(annotation))
    if annotation is bool:
        return "true or false (also 1/0, yes/no, on/off)"
    if annotation in (int, float):
        kind = "an integer" if annotation is int else "a number"
        return kind + bounds(info.metadata)
    pattern = next((getattr(m, "pattern", None) for m in info.metadata), None)
    if pattern:
        return f"text matching {pattern}"
    return str(problem.get("msg", "a valid value"))


def bounds(metadata: list[Any]) -> str:
    low = high = ""
    for item in metadata:
        if isinstance(item, Ge):
            low = f"at least {item.ge}"
        elif isinstance(item, Gt):
            low = f"above {item.gt}"
        elif isinstance(item, Le):
            high = f"at most {item.le}"
        elif isinstance(item, Lt):
            high = f"below {item.lt}"
    if low.startswith("at least") and high.startswith("at most"):
        return f" from {low.removeprefix('at least ')} to {high.removeprefix('at most ')}"
    if low and high:
        return f" {low} and {high}"
    if low or high:
        return (" of " if (low or high).startswith("at ") else " ") + (low or high)
    return ""
