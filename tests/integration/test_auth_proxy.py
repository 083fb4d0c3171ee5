"""Per-address rate limits behind (and without) a reverse proxy: the client address is
taken from `X-Forwarded-For` only when the request comes from a configured proxy."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.integration.accounts_site import WRONG, served, site_settings

pytestmark = pytest.mark.integration


def spoofed_logins(url: str, count: int) -> Counter[int]:
    """`count` wrong logins from this one client, each claiming another address in
    `X-Forwarded-For`."""
    with httpx.Client(base_url=url, timeout=30) as http:
        return Counter(
            http.post(
                "/api/v1/auth/login",
                json={"email": "ada@example.com", "password": WRONG},
                headers={"X-Forwarded-For": f"203.0.113.{i}"},
            ).status_code
            for i in range(count)
        )


def test_a_forwarded_for_header_does_not_reset_the_rate_limit(tmp_path: Path) -> None:
    settings = site_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'accounts.db'}")
    settings.accounts.auth_rate_limit = "20/minute"
    with served(settings) as (url, _):
        answers = spoofed_logins(url, 40)
    assert answers == Counter({401: 20, 429: 20})


def test_a_trusted_proxy_forwards_the_client_address(tmp_path: Path) -> None:
    settings = site_settings(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'accounts.db'}", trusted_proxies=["127.0.0.1"]
    )
    settings.accounts.auth_rate_limit = "20/minute"
    with served(settings) as (url, _):
        answers = spoofed_logins(url, 40)
    # Behind a proxy each address is its own client: none of them is over its rate.
    assert answers == Counter({401: 40})
