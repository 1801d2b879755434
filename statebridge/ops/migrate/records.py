"""Checking Phase 1's users and products, and fingerprinting them for verification.

A check returns the row to stage, or the reason the record is refused. Fingerprints cover
exactly Phase 1's keys (id, name, email, preferences; id, name, price, category), computed
the same way from a source record and from a database row, so that a sum of them over a
table says whether the database now holds what the source said.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from hashlib import blake2b
from typing import Any, NamedTuple

import orjson

from statebridge.timeutil import parse_iso

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CENT = Decimal("0.01")
MAX_PRICE = Decimal("99999999.99")  # NUMERIC(10, 2)
MASK = (1 << 64) - 1


class UserRow(NamedTuple):
    """A staged user, in the staging table's column order."""

    pos: int
    id: str
    name: str
    email: str
    preferences: str  # JSON text, in the source's key order
    created_at: datetime | None
    updated_at: datetime | None
    digest: int


class ProductRow(NamedTuple):
    pos: int
    id: str
    name: str
    price: Decimal
    category: str
    created_at: datetime | None
    updated_at: datetime | None
    digest: int


def fingerprint(parts: tuple[Any, ...]) -> int:
    """56 bits of BLAKE2b over the parts as JSON with every object's keys sorted (so the
    order a source or the database gives them in does not count): fits a signed BIGINT
    column, and sums of them are taken mod 2**64."""
    text = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    return int.from_bytes(blake2b(text, digest_size=7).digest(), "little")


def user_fingerprint(user_id: str, name: str, email: str, preferences: Any) -> int:
    return fingerprint((user_id, name, email, preferences))


def product_fingerprint(product_id: str, name: str, price: Decimal, category: str) -> int:
    return fingerprint((product_id, name, str(price), category))


def text_problem(record: dict[str, Any], key: str, limit: int) -> str | None:
    value = record.get(key)
    if value is None:
        return f"{key} is missing"
    if not isinstance(value, str):
        return f"{key} must be a string"
    if not value.strip():
        return f"{key} is empty"
    if len(value) > limit:
        return f"{key} is longer than {limit} characters"
    return None


def timestamp(record: dict[str, Any], key: str) -> datetime | str | None:
    """The record's optional ISO timestamp `key` as naive UTC, or the reason it is refused."""
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        return f"{key} must be an ISO timestamp string"
    try:
        return parse_iso(value)
    except ValueError:
        return f"{key} is not an ISO timestamp: {value[:40]!r}"


def user_problem(record: dict[str, Any]) -> str:
    """Why a user record failed the fast check in `check_user`."""
    for key, limit in (("id", 50), ("name", 255), ("email", 255)):
        problem = text_problem(record, key, limit)
        if problem:
            return problem
    return f"email is not an email address: {str(record['email'])[:60]!r}"


def check_user(pos: int, record: Any, max_preferences: int) -> UserRow | str:
    """Written for speed (it runs once per record): the common, valid case takes one pass
    of plain comparisons; the slow path only explains a failure."""
    if type(record) is not dict:
        return "not a JSON object"
    user_id = record.get("id")
    name = record.get("name")
    email = record.get("email")
    if not (
        type(user_id) is str
        and type(name) is str
        and type(email) is str
        and 0 < len(user_id) <= 50
        and 0 < len(name) <= 255
        and len(email) <= 255
        and user_id.strip()
        and name.strip()
        and EMAIL.match(email)
    ):
        return user_problem(record)
    preferences = record.get("preferences")
    if preferences is None:
        preferences = {}
    elif type(preferences) is not dict:
        return "preferences must be an object"
    try:
        text = orjson.dumps(preferences)
        digest = fingerprint((user_id, name, email, preferences))
    except TypeError as exc:
        return f"preferences cannot be stored as JSON: {exc}"
    if len(text) > max_preferences:
        return f"preferences are larger than {max_preferences} bytes"
    created: datetime | None = None
    updated: datetime | None = None
    if "createdAt" in record or "updatedAt" in record:
        created_or_problem = timestamp(record, "createdAt")
        if isinstance(created_or_problem, str):
            return created_or_problem
        updated_or_problem = timestamp(record, "updatedAt")
        if isinstance(updated_or_problem, str):
            return updated_or_problem
        created, updated = created_or_problem, updated_or_problem
    return UserRow(pos, user_id, name, email, text.decode(), created, updated, digest)


def price_of(value: Any) -> Decimal | str:
    """Phase 1's price as exact cents, or why it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "price must be a number" if value is not None else "price is missing"
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if exact < 0:
        return f"price is negative: {value}"
    if exact > MAX_PRICE:
        return f"price is larger than {MAX_PRICE}: {value}"
    exponent = exact.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        return f"price has more than two decimals: {value}"
    return exact.quantize(CENT) if exact else Decimal("0.00")


def check_product(pos: int, record: Any) -> ProductRow | str:
    if not isinstance(record, dict):
        return "not a JSON object"
    for key, limit in (("id", 50), ("name", 255)):
        problem = text_problem(record, key, limit)
        if problem:
            return problem
    price = price_of(record.get("price"))
    if isinstance(price, str):
        return price
    problem = text_problem(record, "category", 100)
    if problem:
        return problem
    created = timestamp(record, "createdAt")
    if isinstance(created, str):
        return created
    updated = timestamp(record, "updatedAt")
    if isinstance(updated, str):
        return updated
    name: str = record["name"]
    category: str = record["category"]
    digest = product_fingerprint(record["id"], name, price, category)
    return ProductRow(pos, record["id"], name, price, category, created, updated, digest)
