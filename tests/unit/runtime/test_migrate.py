"""Migration files: statement splitting, file naming, database names (no ClickHouse needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.clickhouse import check_identifier
from runtime.errors import ClickHouseSetupError, MigrationError
from runtime.migrate import DEFAULT_DIRECTORY, load_migrations, migrate, split_statements


def test_statements_split_on_semicolons_at_line_ends_only() -> None:
    sql = (
        "-- header comment; not a statement\n"
        "CREATE TABLE a (x Int8 COMMENT 'one; two') ENGINE = Memory;\n"
        "\n"
        "CREATE TABLE b\n"
        "(\n"
        "    y Int8\n"
        ") ENGINE = Memory;   \n"
        "-- trailing comment only\n"
    )
    assert split_statements(sql) == [
        "-- header comment; not a statement\n"
        "CREATE TABLE a (x Int8 COMMENT 'one; two') ENGINE = Memory",
        "CREATE TABLE b\n(\n    y Int8\n) ENGINE = Memory",
    ]


def test_last_statement_may_lack_a_newline_or_a_semicolon() -> None:
    assert split_statements("SELECT 1;\nSELECT 2;") == ["SELECT 1", "SELECT 2"]
    assert split_statements("SELECT 1;\r\nSELECT 2") == ["SELECT 1", "SELECT 2"]
    assert split_statements("-- nothing\n\n") == []


@pytest.mark.parametrize("name", ["tickscan", "tickscan_test_1a2b", "_x", "A1"])
def test_plain_identifiers_are_accepted(name: str) -> None:
    assert check_identifier(name) == name


@pytest.mark.parametrize(
    "name", ["", "1db", "tick-scan", "tick scan", "db;DROP DATABASE x", "`db`", "db.x", "dé"]
)
def test_other_database_names_are_refused_before_any_query(name: str) -> None:
    with pytest.raises(ClickHouseSetupError):
        check_identifier(name)
    # migrate() refuses before it touches the client.
    with pytest.raises(MigrationError, match="invalid ClickHouse identifier"):
        migrate(None, name)  # type: ignore[arg-type]


def test_files_load_in_numeric_order(tmp_path: Path) -> None:
    for name in ("010_later.sql", "002_second.sql", "001_first.sql"):
        (tmp_path / name).write_text("SELECT 1;\n")
    (tmp_path / "README.md").write_text("not a migration")
    assert [m.name for m in load_migrations(tmp_path)] == [
        "001_first.sql",
        "002_second.sql",
        "010_later.sql",
    ]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["1_short.sql"], "NNN_name.sql"),
        (["001-dash.sql"], "NNN_name.sql"),
        (["001_a.sql", "001_b.sql"], "share the number 001"),
    ],
)
def test_misnamed_or_duplicate_files_are_refused(
    tmp_path: Path, files: list[str], message: str
) -> None:
    for name in files:
        (tmp_path / name).write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match=message):
        load_migrations(tmp_path)


def test_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="does not exist"):
        load_migrations(tmp_path / "nope")


def test_checksum_changes_with_the_text(tmp_path: Path) -> None:
    path = tmp_path / "001_a.sql"
    path.write_text("SELECT 1;\n")
    before = load_migrations(tmp_path)[0].checksum
    path.write_text("SELECT 2;\n")
    assert load_migrations(tmp_path)[0].checksum != before


def test_repository_ddl_is_idempotent_and_parameterised() -> None:
    # Every statement must be re-runnable and must name the database only through the
    # bound parameter, or a second migrate (or another database) would break.
    migrations = load_migrations(DEFAULT_DIRECTORY)
    assert migrations, "no DDL files found"
    assert migrations[0].name == "000_schema_migrations.sql"
    for migration in migrations:
        for statement in migration.statements:
            code = " ".join(
                line for line in statement.splitlines() if not line.strip().startswith("--")
            )
            assert "{database:Identifier}" in code, (migration.name, statement[:60])
            if code.lstrip().upper().startswith("CREATE"):
                assert "IF NOT EXISTS" in code.upper(), (migration.name, statement[:60])
