"""Apply the numbered, idempotent DDL files of infra/clickhouse to a database."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

from runtime.clickhouse import check_identifier
from runtime.errors import ClickHouseSetupError, MigrationError

log = logging.getLogger(__name__)

DEFAULT_DIRECTORY = Path(__file__).resolve().parents[1] / "infra" / "clickhouse"
"""The repository's DDL directory."""

LEDGER = "schema_migrations"
"""Table (created by 000_schema_migrations.sql) recording the files applied."""

_FILE_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")

# A statement ends with `;` at the end of a line. Splitting only there (not on every `;`)
# keeps a `;` inside a COMMENT '...' string intact, which a naive split would cut.
_STATEMENT_END = re.compile(r";[ \t]*(?:\r?\n|\Z)")

_PLACEHOLDER = "{database:Identifier}"


@dataclass(frozen=True)
class Migration:
    """One DDL file."""

    name: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file's text, recorded when applied."""
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def statements(self) -> list[str]:
        """The file's statements, in order."""
        return split_statements(self.sql)


def split_statements(sql: str) -> list[str]:
    """Split a DDL file into statements on `;` at line ends.

    Args:
        sql: Text of a file: statements each ending with `;` at the end of a line,
            with `--` comment lines anywhere.

    Returns:
        The statements without their `;`, stripped; chunks holding only comments and
        blank lines are dropped.
    """
    statements = []
    for chunk in _STATEMENT_END.split(sql):
        code = [line for line in chunk.splitlines() if not line.strip().startswith("--")]
        if any(line.strip() for line in code):
            statements.append(chunk.strip())
    return statements


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """Read every `NNN_name.sql` file of `directory`, in numeric order.

    Args:
        directory: Where the files are; the repository's `infra/clickhouse` by default.

    Returns:
        The migrations, ordered by number.

    Raises:
        MigrationError: If the directory is missing, a `.sql` file is misnamed, or two
            files share a number.
    """
    directory = directory or DEFAULT_DIRECTORY
    if not directory.is_dir():
        raise MigrationError(f"migration directory {directory} does not exist")
    by_number: dict[str, Path] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files are named NNN_name.sql")
        number = match.group(1)
        if number in by_number:
            raise MigrationError(f"{path} and {by_number[number]} share the number {number}")
        by_number[number] = path
    return [
        Migration(name=path.name, path=path, sql=path.read_text(encoding="utf-8"))
        for _, path in sorted(by_number.items())
    ]


def applied_migrations(client: Client, database: str) -> dict[str, str]:
    """The migrations already applied to `database`: file name -> checksum.

    Returns an empty dict when the database or its ledger does not exist yet.
    """
    exists = client.query(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {table:String}",
        parameters={"db": database, "table": LEDGER},
    ).result_rows[0][0]
    if not exists:
        return {}
    # FINAL: two racing migrators may both have recorded a file before a merge.
    rows = client.query(
        "SELECT name, checksum FROM {db:Identifier}.{table:Identifier} FINAL",
        parameters={"db": database, "table": LEDGER},
    ).result_rows
    return {name: checksum for name, checksum in rows}


def migrate(client: Client, database: str = "tickscan", directory: Path | None = None) -> list[str]:
    """Apply, in order, every migration file not yet applied to `database`.

    Each statement is sent with the database name bound as the server-side query
    parameter `{database:Identifier}` (never spliced into the SQL). Files are idempotent
    (`IF NOT EXISTS`), so a run interrupted between applying a file and recording it is
    safe to repeat.

    Args:
        client: A clickhouse-connect client (chdb or server).
        database: Database to create and migrate.
        directory: Directory of `NNN_name.sql` files; the repository's by default.

    Returns:
        Names of the files applied by this call, in order (empty when up to date).

    Raises:
        MigrationError: If the database name is invalid, an applied file was edited
            since, or a statement fails.
    """
    try:
        check_identifier(database)
    except ClickHouseSetupError as exc:
        raise MigrationError(str(exc)) from exc
    migrations = load_migrations(directory)
    done = applied_migrations(client, database)
    applied = []
    # ClickHouse keeps a {database:Identifier} in a view's SELECT as a parameter of a
    # parameterized view instead of binding it, so view bodies name their tables
    # unqualified, and those resolve in the current database: once the database exists,
    # statements run in it.
    previous = client.database
    exists = bool(done)
    try:
        for migration in migrations:
            recorded = done.get(migration.name)
            if recorded == migration.checksum:
                continue
            if recorded is not None:
                raise MigrationError(
                    f"{migration.name} changed after it was applied to {database}: "
                    "add a new numbered file instead of editing an applied one"
                )
            client.database = database if exists else previous
            _apply(client, database, migration)
            exists = True
            applied.append(migration.name)
    finally:
        client.database = previous
    return applied


def _apply(client: Client, database: str, migration: Migration) -> None:
    """Run one file's statements, then record it in the ledger."""
    for number, statement in enumerate(migration.statements, start=1):
        # Without a placeholder the driver would %-format the text with the parameters.
        parameters = {"database": database} if _PLACEHOLDER in statement else None
        try:
            client.command(statement, parameters=parameters)
        except Exception as exc:
            raise MigrationError(
                f"{migration.name}, statement {number}, failed on {database}: {exc}"
            ) from exc
    client.insert(
        LEDGER,
        [[migration.name, migration.checksum]],
        column_names=["name", "checksum"],
        database=database,
    )
    log.info("applied %s to %s", migration.name, database)
