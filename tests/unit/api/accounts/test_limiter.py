"""Per-address request limits, counted in one process's memory."""

from __future__ import annotations

import pytest

from api.accounts.limiter import AuthLimiter
from api.errors import TooManyRequests


def test_requests_over_the_rate_are_refused_with_a_retry_after() -> None:
    limiter = AuthLimiter()
    for _ in range(3):
        limiter.hit("3/minute", "login", "10.0.0.1")
    with pytest.raises(TooManyRequests) as refused:
        limiter.hit("3/minute", "login", "10.0.0.1")
    assert 1 <= refused.value.retry_after_s <= 60
    assert refused.value.status == 429


def test_addresses_and_endpoints_are_counted_apart() -> None:
    limiter = AuthLimiter()
    limiter.hit("1/minute", "login", "10.0.0.1")
    limiter.hit("1/minute", "login", "10.0.0.2")
    limiter.hit("1/minute", "signup", "10.0.0.1")
    with pytest.raises(TooManyRequests):
        limiter.hit("1/minute", "signup", "10.0.0.1")
