"""Moving-window request limits kept in one API process's memory (the auth endpoints' brake)."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from api.errors import TooManyRequests


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
