"""Settings, read from the environment and an optional `.env` file."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url


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
    session_backend: Literal["auto", "sql", "redis"] = "auto"

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
    log_level: str = "info"
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
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
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
