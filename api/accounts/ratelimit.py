"""Brakes on guessing: per-address rate limits of the auth endpoints, and account lock-out."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from fastapi import Request
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from api.accounts.models import User
from api.errors import TooManyRequests, answers
from runtime.settings import AccountsSettings

if TYPE_CHECKING:
    from api.accounts.deps import Accounts


class AuthLimiter:
    """Moving-window request limits, kept in this process's memory.

    In memory, so each API process counts on its own: with N processes a client gets up
    to N times the rate, which still stops guessing at scale (the account lock-out,
    stored in the database, is shared by all).
    """

    def __init__(self) -> None:
        self._storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._items: dict[str, RateLimitItem] = {}

    def hit(self, rate: str, *key: str) -> None:
        """Count one request against `rate` for `key`.

        Args:
            rate: `limits` notation, e.g. `20/minute`.
            key: What is counted together, e.g. the endpoint and the client address.

        Raises:
            TooManyRequests: If the window is full; `retry_after_s` is when a slot frees.
        """
        item = self._items.get(rate)
        if item is None:
            item = self._items[rate] = parse(rate)
        if self._limiter.hit(item, *key):
            return
        reset_at = self._limiter.get_window_stats(item, *key).reset_time
        raise TooManyRequests(
            "too many attempts: wait a little and try again",
            retry_after_s=max(1, math.ceil(reset_at - time.time())),
        )


def rate_limited(endpoint: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency counting each request to an endpoint per client address.

    The rate is `accounts.auth_rate_limit`; over it the request is answered 429 with
    `Retry-After` before the handler runs.

    Args:
        endpoint: The name requests are counted under (each endpoint has its own budget).
    """

    @answers(TooManyRequests)
    async def check(request: Request) -> None:
        accounts: Accounts = request.app.state.accounts
        address = request.client.host if request.client is not None else "unknown"
        accounts.limiter.hit(accounts.settings.accounts.auth_rate_limit, endpoint, address)

    return check


def is_locked(user: User, moment: datetime) -> bool:
    """Whether password logins of the account are refused now."""
    return user.locked_until is not None and user.locked_until > moment


def record_failure(user: User, settings: AccountsSettings, moment: datetime) -> bool:
    """Count a wrong password; lock the account at `login_attempts` failures in a row.

    Returns:
        True if this failure locked the account (the owner is then told by email).
    """
    user.failed_logins = (user.failed_logins or 0) + 1
    if user.failed_logins < settings.login_attempts:
        return False
    user.failed_logins = 0
    user.locked_until = moment + timedelta(seconds=settings.lockout_s)
    return True


def record_success(user: User) -> None:
    """Forget earlier failures after a correct password (or a password reset)."""
    user.failed_logins = 0
    user.locked_until = None
