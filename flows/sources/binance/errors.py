"""What Binance's REST refusals mean: the errors the client raises, and reading a reply.

Binance answers 429 (error -1003) with a ``Retry-After`` in seconds when the request
weight limit is broken, 418 with a ``Retry-After`` (or "banned until <ms>" in the message)
while it bans an IP, and ``{"code", "msg"}`` with any other 4xx.
"""

from __future__ import annotations

import re
from datetime import datetime

import msgspec

from flows.errors import FlowError
from schemas.trades import Trade

DEFAULT_BAN_S = 120.0
"""A 418 without a usable Retry-After or date: Binance's shortest ban."""

_BANNED_UNTIL = re.compile(r"banned until (\d{12,})")


class BinanceRestError(FlowError):
    """Base of every error the Binance REST client raises."""


class BinanceApiError(BinanceRestError):
    """Binance refused a request with a 4xx and (usually) its ``{"code", "msg"}`` body.

    Attributes:
        status: The HTTP status.
        code: Binance's error code (e.g. -1121 invalid symbol), or None without one.
        msg: Binance's message, or the body's text.
    """

    def __init__(self, status: int, code: int | None, msg: str) -> None:
        super().__init__(f"HTTP {status}, Binance error {code}: {msg}")
        self.status = status
        self.code = code
        self.msg = msg


class BinanceBanned(BinanceRestError):
    """Binance banned this IP (HTTP 418); no request may be sent before `until`.

    Attributes:
        until: When the ban ends (UTC).
    """

    def __init__(self, until: datetime, detail: str = "") -> None:
        super().__init__(
            f"Binance banned this IP until {until:%Y-%m-%d %H:%M:%S} UTC"
            + (f" ({detail})" if detail else "")
        )
        self.until = until


class BinanceUnavailable(BinanceRestError):
    """Retries ran out: rate limited (429), server errors (5xx) or network errors."""


class BinanceResponseError(BinanceRestError):
    """A 200 response whose body is not what the endpoint documents."""


class IncompleteTradeRange(BinanceRestError):
    """Binance could not return every id of a trade range.

    Attributes:
        trades: The trades of the range that were returned, in id order.
        missing: The ids of the range that were not.
    """

    def __init__(self, symbol: str, first_id: int, last_id: int, trades: list[Trade]) -> None:
        have = {t.trade_id for t in trades}
        self.trades = trades
        self.missing = [i for i in range(first_id, last_id + 1) if i not in have]
        super().__init__(
            f"{symbol}: {len(self.missing)} of ids {first_id}..{last_id} not available "
            f"from Binance (first missing {self.missing[0] if self.missing else None})"
        )


def retry_after_s(header: str | None) -> float | None:
    """A Retry-After value in seconds (Binance sends an integer), or None."""
    if header is None:
        return None
    try:
        value = float(header)
    except ValueError:
        return None
    return value if value >= 0 else None


def ban_s(retry_after: str | None, text: str, now: float) -> float:
    """Seconds a 418 bans for: its Retry-After, else the "banned until" in its message.

    Args:
        retry_after: The response's Retry-After header.
        text: The response's text (`reply_text`).
        now: Seconds since the epoch.
    """
    seconds = retry_after_s(retry_after)
    if seconds is not None:
        return seconds
    found = _BANNED_UNTIL.search(text)
    return int(found.group(1)) / 1000 - now if found is not None else DEFAULT_BAN_S


def error_of(body: bytes) -> tuple[int | None, str]:
    """Binance's ``{"code", "msg"}`` from an error body, or the body's text."""
    try:
        payload = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None, reply_text(body)
    if isinstance(payload, dict) and isinstance(payload.get("code"), int):
        return payload["code"], str(payload.get("msg", ""))
    return None, reply_text(body)


def reply_text(body: bytes) -> str:
    """The start of a reply's body as text, for messages and logs."""
    return body[:500].decode("utf-8", "replace").strip()
