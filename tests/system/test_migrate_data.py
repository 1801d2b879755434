"""`statebridge migrate data`: Phase 1's users and products into real PostgreSQL and SQLite.

Every test runs the real command in a subprocess against a fresh database and reads the
result back with plain SQL. The helpers here are shared by the other migration tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.commands import (
    by_table,
    phase1,
    report,
    sql_rows,
    statebridge,
    table_dump,
    write_json,
)
from tests.support.databases import drop_pg_database, new_pg_database
from tests.support.recordings import PHASE1
from tests.support.servers import clean_env

# -- helpers shared by test_migrate_sessions, test_export and test_backup -------------------


# -- the three input forms ---------------------------------------------------------------

GUIDE_FILES = ("--users", str(PHASE1 / "users.json"), "--products", str(PHASE1 / "products.json"))


def test_the_guides_users_and_products_files(pg_env: dict[str, str]) -> None:
    data = report(pg_env, "migrate", "data", *GUIDE_FILES)
    tables = by_table(data)
    assert tables["users"]["inserted"] == 2 and tables["products"]["inserted"] == 3
    for table in tables.values():
        assert table["invalid"] == 0 and table["skipped"] == 0
        check = table["verification"]
        assert check["ok"] and check["expected"] == check["found"] == check["matching"]
        assert check["source_checksum"] == check["database_checksum"]
    users = sql_rows(
        pg_env, "SELECT id, name, email, preferences, created_at FROM users ORDER BY id"
    )
    assert [(u[0], u[1], u[2], json.loads(u[3])) for u in users] == [
        (u["id"], u["name"], u["email"], u["preferences"]) for u in phase1("users.json")
    ]
    assert all(u[4] is None for u in users), "Phase 1 has no createdAt: none is invented"
    products = sql_rows(pg_env, "SELECT id, name, price::text, category FROM products ORDER BY id")
    assert products == [
        (p["id"], p["name"], f"{p['price']:.2f}", p["category"]) for p in phase1("products.json")
    ]


@pytest.mark.parametrize(
    ("option", "name"),
    [("--phase1-config", "server-config.json"), ("--phase1-export", "phase1-export.json")],
)
def test_phase1_config_and_export_files(pg_env: dict[str, str], option: str, name: str) -> None:
    data = report(pg_env, "migrate", "data", option, str(PHASE1 / name))
    tables = by_table(data)
    assert (tables["users"]["inserted"], tables["products"]["inserted"]) == (2, 3)
    assert all(table["verification"]["ok"] for table in tables.values())
    assert sql_rows(pg_env, "SELECT count(*) FROM users") == [(2,)]
    if option == "--phase1-export":
        assert data["request_count"] == "requestCount: set to 0"
        assert sql_rows(pg_env, "SELECT name, value FROM counters") == [("requestCount", 0)]


def test_positions_name_the_nested_array(pg_env: dict[str, str], tmp_path: Path) -> None:
    config = phase1("server-config.json")
    config["mockData"]["products"][1]["price"] = -5
    path = write_json(tmp_path / "server-config.json", config)
    data = report(pg_env, "migrate", "data", "--phase1-config", str(path))
    assert [(p["where"], p["id"]) for p in data["problems"]["items"]] == [
        ("mockData.products[1]", "prod002")
    ]


# -- idempotency, --force, --dry-run ------------------------------------------------------


def test_a_second_run_changes_nothing(pg_env: dict[str, str]) -> None:
    report(pg_env, "migrate", "data", *GUIDE_FILES)
    before = table_dump(pg_env)
    again = by_table(report(pg_env, "migrate", "data", *GUIDE_FILES))
    assert [(t["inserted"], t["updated"], t["skipped"]) for t in again.values()] == [
        (0, 0, 2),
        (0, 0, 3),
    ]
    assert all(t["verification"]["ok"] for t in again.values())
    assert table_dump(pg_env) == before


def changed_products(tmp_path: Path) -> Path:
    products = phase1("products.json")
    products[0]["price"] = 31.5
    products[2]["name"] = "Renamed C"
    return write_json(tmp_path / "products.json", products)


def test_existing_rows_are_kept_unless_force(pg_env: dict[str, str], tmp_path: Path) -> None:
    report(pg_env, "migrate", "data", *GUIDE_FILES)
    changed = changed_products(tmp_path)
    kept = by_table(report(pg_env, "migrate", "data", "--products", str(changed)))["products"]
    assert (kept["inserted"], kept["updated"], kept["skipped"], kept["kept_different"]) == (
        0,
        0,
        3,
        2,
    )
    assert kept["verification"]["ok"] and kept["verification"]["matching"] == 1
    query = "SELECT id, name, price::text FROM products ORDER BY id"
    assert sql_rows(pg_env, query)[0] == ("prod001", "Sample Product A", "29.99")

    forced = report(pg_env, "migrate", "data", "--products", str(changed), "--force")
    products = by_table(forced)["products"]
    assert (products["updated"], products["skipped"]) == (2, 1)
    assert products["verification"]["matching"] == 3
    assert sql_rows(pg_env, query) == [
        ("prod001", "Sample Product A", "31.50"),
        ("prod002", "Sample Product B", "19.99"),
        ("prod003", "Renamed C", "9.99"),
    ]
    updated = sql_rows(pg_env, "SELECT id FROM products WHERE updated_at IS NOT NULL ORDER BY id")
    assert updated == [("prod001",), ("prod003",)]
    before = table_dump(pg_env)
    again = report(pg_env, "migrate", "data", "--products", str(changed), "--force")
    assert by_table(again)["products"]["updated"] == 0
    assert table_dump(pg_env) == before


def test_taken_emails_count_only_rows_that_would_be_written(
    pg_env: dict[str, str], tmp_path: Path
) -> None:
    """A changed row that is kept (no --force) cannot take an email; under --force it can,
    and is refused when another user has that email; new rows are checked either way."""
    report(pg_env, "migrate", "data", "--users", str(PHASE1 / "users.json"))
    source = phase1("users.json")[:1]
    source[0]["email"] = "user2@example.com"  # user001 asks for user002's email
    source += [
        {"id": "u03", "name": "New", "email": "new@example.com"},
        {"id": "u04", "name": "Clash", "email": "USER1@example.com"},
    ]
    users = write_json(tmp_path / "users.json", source)

    kept = report(pg_env, "migrate", "data", "--users", str(users))
    table = by_table(kept)["users"]
    assert (table["inserted"], table["skipped"], table["kept_different"], table["invalid"]) == (
        1,
        1,
        1,
        1,
    )
    assert [(p["where"], p["reason"]) for p in kept["problems"]["items"]] == [
        ("users.json[2]", "email already belongs to user user001")
    ]
    assert table["verification"]["ok"]

    forced = report(pg_env, "migrate", "data", "--users", str(users), "--force")
    table = by_table(forced)["users"]
    assert (table["inserted"], table["updated"], table["skipped"], table["invalid"]) == (
        0,
        0,
        1,
        2,
    )
    assert [(p["where"], p["reason"]) for p in forced["problems"]["items"]] == [
        ("users.json[0]", "email already belongs to user user002"),
        ("users.json[2]", "email already belongs to user user001"),
    ]
    assert table["verification"]["ok"]
    assert sql_rows(pg_env, "SELECT id, email FROM users ORDER BY id") == [
        ("u03", "new@example.com"),
        ("user001", "user1@example.com"),
        ("user002", "user2@example.com"),
    ]


def test_dry_run_reports_and_changes_nothing(pg_env: dict[str, str], tmp_path: Path) -> None:
    empty = table_dump(pg_env)
    dry = report(pg_env, "migrate", "data", *GUIDE_FILES, "--dry-run")
    assert dry["dry_run"] is True
    assert [(t["inserted"], t["verification"]) for t in dry["tables"]] == [(2, None), (3, None)]
    assert table_dump(pg_env) == empty

    report(pg_env, "migrate", "data", *GUIDE_FILES)
    before = table_dump(pg_env)
    changed = changed_products(tmp_path)
    forced = report(pg_env, "migrate", "data", "--products", str(changed), "--force", "--dry-run")
    assert by_table(forced)["products"]["updated"] == 2
    assert table_dump(pg_env) == before


# -- invalid records ----------------------------------------------------------------------

BAD_USERS = [
    {"id": "u01", "name": "Ann", "email": "ann@example.com", "preferences": {"theme": "dark"}},
    {"name": "No Id", "email": "noid@example.com"},
    {"id": "u03", "email": "noname@example.com"},
    {"id": "u04", "name": "No Email"},
    {"id": "u05", "name": "Bad Email", "email": "not-an-email"},
    {"id": "u01", "name": "Same Id", "email": "other@example.com"},
    {"id": "u07", "name": "Same Email", "email": "ANN@example.com"},
    {"id": "u08", "name": "Taken Email", "email": "user1@example.com"},
    {"id": "u09", "name": "Bad Prefs", "email": "prefs@example.com", "preferences": [1, 2]},
    "not an object",
    {"id": "x" * 51, "name": "Long Id", "email": "long@example.com"},
    {"id": "u12", "name": "Bad Time", "email": "time@example.com", "createdAt": "yesterday"},
    {
        "id": "u13",
        "name": "Fine",
        "email": "fine@example.com",
        "createdAt": "2026-01-02T03:04:05.678Z",
    },
]
BAD_USER_REASONS = {
    1: "id is missing",
    2: "name is missing",
    3: "email is missing",
    4: "email is not an email address",
    5: "duplicate id (first at bad_users.json[0])",
    6: "duplicate email (first at bad_users.json[0])",
    7: "email already belongs to user user001",
    8: "preferences must be an object",
    9: "not a JSON object",
    10: "id is longer than 50 characters",
    11: "createdAt is not an ISO timestamp",
}
BAD_PRODUCTS = [
    {"id": "p01", "name": "Fine", "price": 1.5, "category": "a"},
    {"id": "p02", "name": "Negative", "price": -0.01, "category": "a"},
    {"id": "p03", "name": "Three Decimals", "price": 1.234, "category": "a"},
    {"id": "p04", "name": "No Category", "price": 1},
    {"id": "p05", "name": "Empty Category", "price": 1, "category": ""},
    {"id": "p06", "name": "String Price", "price": "9.99", "category": "a"},
    {"id": "p07", "name": "No Price", "category": "a"},
    {"id": "p08", "name": "Huge", "price": 1e9, "category": "a"},
    {"id": "p09", "name": "Free", "price": 0, "category": "a"},
    {"id": "p01", "name": "Again", "price": 2, "category": "a"},
]
BAD_PRODUCT_REASONS = {
    1: "price is negative",
    2: "price has more than two decimals",
    3: "category is missing",
    4: "category is empty",
    5: "price must be a number",
    6: "price is missing",
    7: "price is larger than 99999999.99",
    9: "duplicate id (first at bad_products.json[0])",
}


def test_every_kind_of_invalid_record_is_reported_and_skipped(
    pg_env: dict[str, str], tmp_path: Path
) -> None:
    report(pg_env, "migrate", "data", "--users", str(PHASE1 / "users.json"))
    users = write_json(tmp_path / "bad_users.json", BAD_USERS)
    products = write_json(tmp_path / "bad_products.json", BAD_PRODUCTS)
    data = report(pg_env, "migrate", "data", "--users", str(users), "--products", str(products))
    problems = {p["where"]: p["reason"] for p in data["problems"]["items"]}
    expected = {f"bad_users.json[{i}]": reason for i, reason in BAD_USER_REASONS.items()} | {
        f"bad_products.json[{i}]": reason for i, reason in BAD_PRODUCT_REASONS.items()
    }
    assert set(problems) == set(expected)
    for where, reason in expected.items():
        assert problems[where].startswith(reason), (where, problems[where])
    assert data["problems"]["count"] == len(expected)
    tables = by_table(data)
    assert (tables["users"]["read"], tables["users"]["invalid"]) == (13, 11)
    assert (tables["products"]["read"], tables["products"]["invalid"]) == (10, 8)
    assert all(t["verification"]["ok"] for t in tables.values())
    assert sql_rows(pg_env, "SELECT id FROM users ORDER BY id") == [
        ("u01",),
        ("u13",),
        ("user001",),
        ("user002",),
    ]
    assert sql_rows(pg_env, "SELECT id, price::text FROM products ORDER BY id") == [
        ("p01", "1.50"),
        ("p09", "0.00"),
    ]
    created = sql_rows(pg_env, "SELECT created_at::text FROM users WHERE id = 'u13'")
    assert created == [("2026-01-02 03:04:05.678",)]


def test_strict_writes_nothing_when_a_record_is_invalid(
    pg_env: dict[str, str], tmp_path: Path
) -> None:
    users = write_json(tmp_path / "bad_users.json", BAD_USERS)
    data = report(pg_env, "migrate", "data", "--users", str(users), "--strict", code=1)
    assert data["aborted"] is True and data["problems"]["count"] == 10
    assert sql_rows(pg_env, "SELECT count(*) FROM users") == [(0,)]
    clean = report(pg_env, "migrate", "data", *GUIDE_FILES, "--strict")
    assert clean["aborted"] is False
    assert sql_rows(pg_env, "SELECT count(*) FROM users") == [(2,)]


@pytest.mark.parametrize("target", ["sqlite_env", "pg_env"])
def test_a_strict_refusal_says_nothing_was_written_and_counts_nothing_as_written(
    request: pytest.FixtureRequest, target: str, tmp_path: Path
) -> None:
    env: dict[str, str] = request.getfixturevalue(target)
    # one valid record, which the fast path into the empty table loads before the refusal
    users = write_json(tmp_path / "bad_users.json", BAD_USERS[:4])
    refused = statebridge({**env, "COLUMNS": "200"}, "migrate", "data", "--users", str(users),
                          "--strict")  # fmt: skip
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    text = refused.stdout
    assert "Refused (--strict): nothing was written" in text, text
    assert "would insert" in text and "would update" in text
    for written_words in ("Migrated", "inserted", "updated", "skipped)", "Verification"):
        assert written_words not in text, (written_words, text)
    assert text.rstrip().endswith("--strict: 3 invalid records, nothing was written"), text

    data = report(env, "migrate", "data", "--users", str(users), "--strict", code=1)
    assert data["aborted"] is True and data["written"] is False
    assert by_table(data)["users"]["verification"] is None
    assert sql_rows(env, "SELECT count(*) FROM users") == [(0,)]

    one_bad = write_json(tmp_path / "one_bad.json", BAD_USERS[:2])
    single = statebridge({**env, "COLUMNS": "200"}, "migrate", "data", "--users", str(one_bad),
                         "--strict")  # fmt: skip
    assert single.stdout.rstrip().endswith("--strict: 1 invalid record, nothing was written")

    dry = report(env, "migrate", "data", "--users", str(one_bad), "--dry-run")
    assert dry["written"] is False and dry["aborted"] is False
    done = report(env, "migrate", "data", "--users", str(one_bad))
    assert done["written"] is True and by_table(done)["users"]["inserted"] == 1
    assert sql_rows(env, "SELECT count(*) FROM users") == [(1,)]


def test_broken_json_is_one_line_and_changes_nothing(
    pg_env: dict[str, str], tmp_path: Path
) -> None:
    broken = tmp_path / "users.json"
    broken.write_text(json.dumps(phase1("users.json"))[:-30])
    result = statebridge(pg_env, "migrate", "data", "--users", str(broken))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("statebridge: ") and "is not valid JSON" in result.stderr
    assert sql_rows(pg_env, "SELECT count(*) FROM users") == [(0,)]


def test_one_source_form_at_a_time(pg_env: dict[str, str]) -> None:
    result = statebridge(
        pg_env,
        "migrate",
        "data",
        *GUIDE_FILES,
        "--phase1-config",
        str(PHASE1 / "server-config.json"),
    )
    assert result.returncode == 2 and "give one source" in result.stderr


def test_refuses_a_database_without_the_schema() -> None:
    name, url = new_pg_database()
    try:
        result = statebridge({"DATABASE_URL": url}, "migrate", "data", *GUIDE_FILES)
        assert result.returncode == 1
        assert "statebridge db upgrade" in result.stderr and "Traceback" not in result.stderr
    finally:
        drop_pg_database(name)


# -- the embedded default -------------------------------------------------------------------


def test_sqlite_migrates_verifies_and_is_idempotent(
    sqlite_env: dict[str, str], tmp_path: Path
) -> None:
    dry = report(sqlite_env, "migrate", "data", *GUIDE_FILES, "--dry-run")
    assert [t["inserted"] for t in dry["tables"]] == [2, 3]
    assert dry["warnings"] == [
        "the embedded database does not exist yet: dry run against an empty one"
    ]
    assert not (Path(sqlite_env["STATEBRIDGE_DATA_DIR"]) / "statebridge.db").exists()
    data = report(
        sqlite_env, "migrate", "data", "--phase1-export", str(PHASE1 / "phase1-export.json")
    )
    assert data["database"] == "sqlite"
    assert [(t["inserted"], t["verification"]["ok"]) for t in data["tables"]] == [
        (2, True),
        (3, True),
    ]
    before = table_dump(sqlite_env)
    again = report(
        sqlite_env, "migrate", "data", "--phase1-export", str(PHASE1 / "phase1-export.json")
    )
    assert [t["skipped"] for t in again["tables"]] == [2, 3]
    assert table_dump(sqlite_env) == before
    forced = report(
        sqlite_env, "migrate", "data", "--products", str(changed_products(tmp_path)), "--force"
    )
    assert by_table(forced)["products"]["updated"] == 2
    rows = sql_rows(sqlite_env, "SELECT id, name FROM products ORDER BY id")
    assert rows[2] == ("prod003", "Renamed C")
    users = write_json(tmp_path / "bad_users.json", BAD_USERS)
    bad = report(sqlite_env, "migrate", "data", "--users", str(users))
    assert bad["problems"]["count"] == 11


# -- memory ---------------------------------------------------------------------------------


def peak_rss_mb(env: dict[str, str], *args: str) -> float:
    """Run the command in a child that reports its own peak resident size (VmHWM, which,
    unlike ru_maxrss, does not carry over the parent's peak across exec)."""
    code = (
        "import re, sys\n"
        "from statebridge.cli.main import app\n"
        "try:\n"
        f"    app({list(args)!r}, prog_name='statebridge')\n"
        "finally:\n"
        "    status = open('/proc/self/status').read()\n"
        "    print(re.search(r'VmHWM:\\s+(\\d+)', status).group(1), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return int(result.stderr.strip().splitlines()[-1]) / 1024


def test_input_is_streamed_not_loaded(pg_env: dict[str, str], tmp_path: Path) -> None:
    """A 150 MB users file (each record carries a 1 MB field the schema does not keep) is
    migrated without holding the file in memory."""
    big = tmp_path / "users.json"
    padding = "x" * 1_000_000
    with big.open("w") as out:
        out.write("[")
        for number in range(150):
            if number:
                out.write(",")
            user = {"id": f"big{number}", "name": "Big", "email": f"big{number}@example.com"}
            out.write(json.dumps({**user, "biography": padding}))
        out.write("]")
    small = write_json(
        tmp_path / "small.json", [{"id": "s", "name": "S", "email": "s@example.com"}]
    )
    baseline = peak_rss_mb(pg_env, "migrate", "data", "--users", str(small), "--json")
    peak = peak_rss_mb(pg_env, "migrate", "data", "--users", str(big), "--json")
    assert sql_rows(pg_env, "SELECT count(*) FROM users") == [(151,)]
    assert peak - baseline < 60, f"peak {peak:.0f} MB against {baseline:.0f} MB for a tiny file"


# -- sample files ---------------------------------------------------------------------------


def test_sample_files_migrate_and_extend_phase1s_config(tmp_path: Path) -> None:
    """`migrate sample` writes what `migrate data` takes, and a Phase 1 config holding the
    same records after its own: both servers then serve the same catalog."""
    out = tmp_path / "sample"
    done = statebridge(
        {}, "migrate", "sample", "--products", "250", "--users", "40", "--out", str(out),
        "--phase1-config", str(PHASE1 / "server-config.json"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "products.json: 250 records" in done.stdout
    products = json.loads((out / "products.json").read_text())
    users = json.loads((out / "users.json").read_text())
    assert len(products) == 250 and len({p["id"] for p in products}) == 250
    assert len(users) == 40 and all("@" in u["email"] for u in users)
    config = json.loads((out / "server-config.json").read_text())
    own = phase1("server-config.json")["mockData"]
    assert config["mockData"]["products"] == own["products"] + products
    assert config["mockData"]["users"] == own["users"] + users
    assert config["ports"] == phase1("server-config.json")["ports"]  # the rest as it was

    env = {"STATEBRIDGE_DATA_DIR": str(tmp_path / "data")}
    data = report(env, "migrate", "data", "--phase1-config", str(out / "server-config.json"))
    tables = by_table(data)
    assert tables["products"]["verification"]["ok"] and tables["products"]["read"] == 253
    assert sql_rows(env, "SELECT count(*) FROM products") == [(253,)]


def test_sample_refusals_are_one_line(tmp_path: Path) -> None:
    nothing = statebridge({}, "migrate", "sample", "--out", str(tmp_path / "x"))
    assert nothing.returncode == 2
    assert nothing.stderr.strip() == (
        "statebridge: nothing to write: give --users or --products above 0"
    )
    bad = tmp_path / "bad.json"
    bad.write_text('{"ports": {}}')
    done = statebridge(
        {}, "migrate", "sample", "--products", "1", "--out", str(tmp_path / "y"),
        "--phase1-config", str(bad),
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"statebridge: {bad} has no mockData object: not Phase 1's server-config.json"
    )
