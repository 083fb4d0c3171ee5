"""Fresh ClickHouse databases for integration tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from runtime.clickhouse import connect
from runtime.migrate import migrate


@contextmanager
def migrated_database(dsn: str, prefix: str) -> Iterator[str]:
    """A fresh database `<prefix>_<random>` with every migration applied, dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = connect(dsn)
    try:
        migrate(admin, name)
        yield name
        admin.command("DROP DATABASE IF EXISTS {db:Identifier}", parameters={"db": name})
    finally:
        admin.close()
