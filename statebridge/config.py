"""Settings, read from the environment and an optional `.env` file."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    cors_origins: list[str] = ["*"]
    seed: Literal["auto", "never"] = "auto"
    instance_id: str = ""
    debug: bool = Field(False, validation_alias=AliasChoices("DEBUG", "STATEBRIDGE_DEBUG"))
    log_level: str = "info"
    access_log: bool = False

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str) and not value.lstrip().startswith("["):
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

    @property
    def effective_session_backend(self) -> str:
        if self.session_backend != "auto":
            return self.session_backend
        return "redis" if self.redis_url else "sql"
