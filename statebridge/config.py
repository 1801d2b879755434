"""Settings, read from the environment and an optional `.env` file."""

from __future__ import annotations

import json
import os
import typing
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from annotated_types import Ge, Gt, Le, Lt
from pydantic import AliasChoices, Field, ValidationError, field_validator
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
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
REDIS_ACCEPTED = "a redis://, rediss:// or unix:// URL (unset: no Redis)"
ORIGINS_ACCEPTED = "origins separated by commas, or a JSON list of strings"


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
    redis_url: str = Field("", validation_alias=AliasChoices("REDIS_URL", "STATEBRIDGE_REDIS_URL"))
    data_dir: Path = Path("data")
    session_backend: Literal["auto", "sql", "redis", "memory"] = "auto"

    session_ttl: int = Field(900, ge=1, description="idle seconds before a session expires")
    session_max_lifetime: int = Field(86400, ge=1, description="absolute session lifetime, s")
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

    @field_validator("redis_url")
    @classmethod
    def _known_redis(cls, value: str) -> str:
        url = value.strip()
        if url and not url.startswith(REDIS_SCHEMES):
            raise ValueError(REDIS_ACCEPTED)
        return value

    @cached_property
    def effective_database_url(self) -> str:
        """The SQLAlchemy URL: DATABASE_URL made async, or the embedded SQLite file."""
        url = self.database_url.strip()
        if not url:
            return f"sqlite+aiosqlite:///{(self.data_dir / 'statebridge.db').resolve()}"
        for plain in ("postgresql://", "postgres://"):
            if url.startswith(plain):
                return "postgresql+asyncpg://" + url[len(plain) :]
        if url.startswith("sqlite://"):
            return "sqlite+aiosqlite://" + url[len("sqlite://") :]
        return url

    @property
    def embedded(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def production_problem(self) -> str | None:
        """Why these settings are unfit for production (STATEBRIDGE_ENV=production), or None.

        Production never runs on defaulted secrets: a database or Redis without a password,
        a wildcard CORS origin beside cookie sessions, or DEBUG on."""
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
        if self.redis_url and not urlsplit(self.redis_url).password:
            return "production refuses a REDIS_URL without a password"
        if self.session_cookie and "*" in self.cors_origins:
            return "production refuses STATEBRIDGE_CORS_ORIGINS=* with cookie sessions"
        if self.debug:
            return "production refuses DEBUG on"
        return None

    @property
    def effective_session_backend(self) -> str:
        if self.session_backend != "auto":
            return self.session_backend
        return "redis" if self.redis_url else "sql"


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
    if field in ("database_url", "redis_url") and isinstance(value, str):
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
