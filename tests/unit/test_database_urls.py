"""The database URL settings: the pooler, the direct URL schema changes go to, the replica."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from statebridge.config import DIRECT_URL_NEEDED, Settings, setting_problems

POOLER = "postgresql://app:pw@pgbouncer:6432/sb"
DIRECT = "postgresql://app:pw@postgres:5432/sb"


def settings(**env: str) -> Settings:
    return Settings(_env_file=None, **env)  # type: ignore[call-arg]


def test_without_a_pooler_schema_changes_go_to_database_url() -> None:
    plain = settings(database_url=DIRECT)
    assert not plain.pooled
    assert plain.schema_url == plain.direct_url == "postgresql+asyncpg://app:pw@postgres:5432/sb"


def test_behind_a_transaction_pooler_schema_changes_need_the_direct_url() -> None:
    pooled = settings(database_url=POOLER, database_pooler="transaction")
    assert pooled.pooled and pooled.direct_url == ""
    with pytest.raises(ValueError, match="DATABASE_DIRECT_URL") as refused:
        _ = pooled.schema_url
    assert str(refused.value) == DIRECT_URL_NEEDED and "\n" not in DIRECT_URL_NEEDED
    given = settings(database_url=POOLER, database_pooler="transaction", database_direct_url=DIRECT)
    assert given.schema_url == "postgresql+asyncpg://app:pw@postgres:5432/sb"
    assert given.effective_database_url == "postgresql+asyncpg://app:pw@pgbouncer:6432/sb"


def test_the_embedded_file_is_never_pooled_nor_replicated() -> None:
    embedded = settings(database_pooler="transaction", database_read_url=DIRECT)
    assert embedded.embedded and not embedded.pooled
    assert embedded.read_url == ""
    assert embedded.schema_url == embedded.effective_database_url


def test_the_read_url_is_made_async() -> None:
    replicated = settings(database_url=DIRECT, database_read_url="postgres://r@replica/sb")
    assert replicated.read_url == "postgresql+asyncpg://r@replica/sb"


def test_a_direct_or_read_url_must_be_postgresql() -> None:
    with pytest.raises(ValidationError) as caught:
        settings(database_url=DIRECT, database_read_url="sqlite:///x.db")
    line = setting_problems(caught.value)
    assert line.startswith("DATABASE_READ_URL='sqlite:///x.db' is not accepted: a postgresql://")
    with pytest.raises(ValidationError) as caught:
        settings(database_direct_url="mysql://u:secret@h/db")
    assert "secret" not in setting_problems(caught.value)
    with pytest.raises(ValidationError):
        settings(database_pooler="session")
