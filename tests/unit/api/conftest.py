"""Fixtures of the API unit tests: an accounts database per test (SQLite in its directory)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.accounts.db import AccountsDb


@pytest.fixture
def accounts_db(tmp_path: Path) -> Iterator[AccountsDb]:
    db = AccountsDb(f"sqlite+aiosqlite:///{tmp_path / 'accounts.db'}")
    asyncio.run(db.migrate())
    yield db
    asyncio.run(db.aclose())
