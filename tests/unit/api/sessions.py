"""Run a step in a session of the accounts database, from a synchronous test."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from api.accounts.db import AccountsDb

T = TypeVar("T")


def run(db: AccountsDb, step: Callable[..., Awaitable[T]], *args: object) -> T:
    """`step(session, *args)` in one session of `db` (committed if it returns); its result."""

    async def go() -> T:
        async with db.session() as session:
            return await step(session, *args)

    return asyncio.run(go())
