"""Per-address request limits and the account lock-out after failed logins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.accounts.models import User
from api.accounts.ratelimit import AuthLimiter, is_locked, record_failure, record_success
from api.errors import TooManyRequests
from runtime.settings import AccountsSettings

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


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


def user(**fields: object) -> User:
    return User(email="ada@example.com", created_at=T0, failed_logins=0, **fields)


def test_the_account_locks_at_the_configured_failure() -> None:
    settings = AccountsSettings(login_attempts=3, lockout_s=600)
    ada = user()
    assert [record_failure(ada, settings, T0) for _ in range(2)] == [False, False]
    assert not is_locked(ada, T0)
    assert record_failure(ada, settings, T0) is True
    assert ada.locked_until == T0 + timedelta(seconds=600)
    assert is_locked(ada, T0 + timedelta(seconds=599))
    assert not is_locked(ada, T0 + timedelta(seconds=600))


def test_a_success_forgets_earlier_failures() -> None:
    settings = AccountsSettings(login_attempts=3)
    ada = user()
    record_failure(ada, settings, T0)
    record_failure(ada, settings, T0)
    record_success(ada)
    assert [record_failure(ada, settings, T0) for _ in range(2)] == [False, False]
    ada.locked_until = T0 + timedelta(hours=1)
    record_success(ada)
    assert not is_locked(ada, T0)
