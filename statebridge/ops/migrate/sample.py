"""`statebridge migrate sample`: users.json and products.json of any size, in Phase 1's shape.

For trying `migrate data` on a real volume, and for measuring a large catalog side by side
with Phase 1: with `--phase1-config`, a copy of Phase 1's server-config.json whose mockData
holds the same records after its own, so both servers serve the same list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from statebridge.ops.migrate.bench import fake_products, fake_users, write_array
from statebridge.ops.migrate.database import MigrateError


@dataclass
class SampleReport:
    written: list[tuple[str, int, int]] = field(default_factory=list)  # path, records, bytes


def phase1_config_with(
    config: Path, users: Iterable[dict[str, Any]], products: Iterable[dict[str, Any]]
) -> bytes:
    """Phase 1's config with the records added after its own mockData."""
    try:
        data = orjson.loads(config.read_bytes())
    except OSError as exc:
        raise MigrateError(f"cannot read {config}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise MigrateError(f"{config} is not valid JSON: {exc}") from None
    mock = data.get("mockData") if isinstance(data, dict) else None
    if not isinstance(mock, dict):
        raise MigrateError(f"{config} has no mockData object: not Phase 1's server-config.json")
    for key, added in (("users", users), ("products", products)):
        own = mock.get(key) or []
        if not isinstance(own, list):
            raise MigrateError(f"{config}: mockData.{key} is not an array")
        mock[key] = [*own, *added]
    return orjson.dumps(data, option=orjson.OPT_INDENT_2)


def write_sample(
    out: Path, users: int, products: int, phase1_config: Path | None = None
) -> SampleReport:
    if users == 0 and products == 0:
        raise MigrateError("nothing to write: give --users or --products above 0")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MigrateError(f"cannot create {out}: {exc.strerror}") from None
    report = SampleReport()
    made_users: Iterable[dict[str, Any]] = fake_users(users)
    made_products: Iterable[dict[str, Any]] = fake_products(products)
    if phase1_config is not None:  # the config holds them all anyway: made once, used twice
        made_users, made_products = list(made_users), list(made_products)
    for name, count, records in (
        ("users.json", users, made_users),
        ("products.json", products, made_products),
    ):
        if count:
            path = out / name
            write_array(path, iter(records))
            report.written.append((str(path), count, path.stat().st_size))
    if phase1_config is not None:
        text = phase1_config_with(phase1_config, made_users, made_products)
        path = out / "server-config.json"
        path.write_bytes(text)
        report.written.append((str(path), users + products, len(text)))
    return report
