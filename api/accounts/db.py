"""The accounts database: an async SQLAlchemy engine, its sessions, and its migrations."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


class AccountsDb:
    """The engine and session factory of the accounts database.

    SQLite (the default) gets foreign keys switched on for every connection, so deleting a
    user deletes what is theirs, as PostgreSQL does, and transactions whose savepoints
    roll back alone, as PostgreSQL's do.

    Args:
        url: SQLAlchemy async URL (`sqlite+aiosqlite:///...`, `postgresql+asyncpg://...`).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_connect)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (Alembic, on this engine's connection)."""
        async with self.engine.begin() as connection:
            await connection.run_sync(_upgrade)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed when the block ends, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def upsert_insert(session: AsyncSession, table: type[Any]) -> Any:
    """An INSERT into `table` that can take `.on_conflict_do_nothing()`: the dialect's own,
    since standard SQL has no such clause (PostgreSQL and SQLite spell it the same way)."""
    bind = session.get_bind()
    insert = postgresql.insert if bind.dialect.name == "postgresql" else sqlite.insert
    return insert(table)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 module begins transactions itself, lazily, and a SAVEPOINT's release
    # then commits the whole outer transaction (measured: a nested block's row survived
    # the outer rollback). Taking BEGIN over (`_sqlite_begin`) makes savepoints nest.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
