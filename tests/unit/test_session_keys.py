"""Session ids at rest (statebridge/db/sessionkeys.py): keyed hashes, sealed ids, the secret's
origin, and the cost of a key on the hot path."""

from __future__ import annotations

import os
import threading
import timeit
from pathlib import Path

import pytest

from statebridge.config import DEVELOPMENT_SECRET, SECRET_NEEDED, Settings
from statebridge.db.sessionkeys import SECRET_FILE, SessionKeys, session_keys, session_secret
from statebridge.stores.sessions.base import new_session_id

SECRET = "k" * 32
OTHER = "o" * 32


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def test_a_key_is_the_hmac_of_the_id_not_the_id() -> None:
    keys = SessionKeys(SECRET)
    session_id = new_session_id()
    key = keys.key(session_id)
    assert len(key) == 32 and int(key, 16) >= 0
    assert session_id not in key
    assert keys.key(session_id) == key  # the same every time: one lookup
    assert SessionKeys(OTHER).key(session_id) != key
    assert keys.key(new_session_id()) != key


def test_the_previous_secret_gives_the_old_key() -> None:
    session_id = new_session_id()
    rotated = SessionKeys(OTHER, previous=SECRET)
    assert rotated.rotating and not SessionKeys(OTHER).rotating
    assert rotated.previous_key(session_id) == SessionKeys(SECRET).key(session_id)
    assert rotated.key(session_id) == SessionKeys(OTHER).key(session_id)
    assert SessionKeys(OTHER).previous_key(session_id) is None


def test_a_sealed_id_opens_only_with_its_secret_and_its_row() -> None:
    keys = SessionKeys(SECRET)
    session_id = new_session_id()
    key = keys.key(session_id)
    sealed = keys.seal(session_id, key)
    assert session_id not in sealed
    assert keys.seal(session_id, key) != sealed  # a fresh nonce each time
    assert keys.open(sealed, key) == session_id
    assert SessionKeys(OTHER, previous=SECRET).open(sealed, key) == session_id  # after rotation
    assert SessionKeys(OTHER).open(sealed, key) is None
    assert keys.open(sealed, keys.key(new_session_id())) is None  # moved to another row
    assert keys.open(None, key) is None
    assert keys.open("not base64 ***", key) is None


def test_embedded_secret_is_made_once_beside_the_database(tmp_path: Path) -> None:
    embedded = settings(data_dir=tmp_path)
    first = session_secret(embedded)
    assert len(first) >= 32 and first != DEVELOPMENT_SECRET
    path = tmp_path / SECRET_FILE
    assert path.read_text().strip() == first
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert session_secret(embedded) == first  # a restart finds the same secret
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_FILE]


def test_concurrent_starts_agree_on_one_secret(tmp_path: Path) -> None:
    found: list[str] = []

    def start() -> None:
        found.append(session_secret(settings(data_dir=tmp_path)))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == 1


def test_where_the_secret_comes_from(tmp_path: Path) -> None:
    given = settings(data_dir=tmp_path, session_secret=SECRET)
    assert session_secret(given) == SECRET
    assert not (tmp_path / SECRET_FILE).exists()
    postgres = settings(database_url="postgresql://u:p@db/x")
    assert session_secret(postgres) == DEVELOPMENT_SECRET
    production = settings(env="production", database_url="postgresql://u:p@db/x")
    with pytest.raises(ValueError, match="STATEBRIDGE_SESSION_SECRET"):
        session_secret(production)
    assert production.production_problem() == SECRET_NEEDED
    weak = settings(
        env="production", database_url="postgresql://u:p@db/x", session_secret=DEVELOPMENT_SECRET
    )
    assert weak.production_problem() == SECRET_NEEDED
    rotated = session_keys(
        settings(data_dir=tmp_path, session_secret=OTHER, session_secret_previous=SECRET)
    )
    session_id = new_session_id()
    assert rotated.previous_key(session_id) == SessionKeys(SECRET).key(session_id)


def test_a_key_costs_microseconds() -> None:
    """GET /session and /cart key every request: print what one key costs (pytest -s)."""
    keys = SessionKeys(SECRET, previous=OTHER)
    session_id = new_session_id()
    runs = 20000
    seconds = min(timeit.repeat(lambda: keys.key(session_id), number=runs, repeat=5)) / runs
    sealing = min(timeit.repeat(lambda: keys.seal(session_id, "k"), number=2000, repeat=3)) / 2000
    print(f"\nkey: {seconds * 1e6:.2f} us per call; seal: {sealing * 1e6:.2f} us per call")
    assert keys.key(session_id) == keys.key(session_id)  # measured, not asserted on: no timings
