"""Binance USDⓈ-M perpetuals history over REST: the endpoints' facts and their responses.

Three endpoints give a perpetual's history; each body is parsed here into the records of
`schemas.perps` with exact decimals, raising `BinanceResponseError` when it is not what
Binance documents:

- ``GET /fapi/v1/fundingRate`` (symbol, startTime, endTime, limit up to 1000): the settled
  funding times, oldest first, from startTime. No request weight is documented; instead
  it shares a limit of 500 requests per 5 minutes per IP with ``/fapi/v1/fundingInfo``.
  A documented row::

      {"symbol": "BTCUSDT", "fundingRate": "-0.03750000", "fundingTime": 1570608000000,
       "markPrice": "34287.54619963"}

  (``markPrice`` is empty on the oldest rows: no mark price is then recorded.)
- ``GET /futures/data/openInterestHist`` (symbol, period, startTime, endTime, limit up to
  500): open interest every `period`. Weight 0, but limited to 1000 requests per 5 minutes
  per IP, and **only the last 30 days** exist: Binance refuses an older startTime. A
  documented row (``timestamp`` a string there, a number in live answers: both are read)::

      {"symbol": "BTCUSDT", "sumOpenInterest": "20403.63700000",
       "sumOpenInterestValue": "150570784.07809979", "timestamp": "1583127900000"}

- ``GET /fapi/v1/markPriceKlines`` (symbol, interval, startTime, endTime, limit up to 1500,
  weighed by limit as ``klines``): klines of the mark price, in the ``klines`` layout with
  the volume fields zero::

      [1591256400000, "9653.69440000", "9653.69640000", "9651.38600000", "9651.55200000",
       "0", 1591256459999, "0", 60, "0", "0", "0"]

Sources: developers.binance.com, USDⓈ-M Futures Market Data: Get Funding Rate History,
Open Interest Statistics, Mark Price Kline/Candlestick Data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

import msgspec

from flows.errors import FlowError
from flows.sources.binance.errors import BinanceResponseError
from flows.sources.binance.responses import parse_klines
from flows.sources.binance.trades import BinanceDecodeError, to_decimal
from schemas.perps import FundingEvent, MarkKline, OpenInterest

__all__ = [
    "DATA_PREFIX",
    "FUNDING_PAGE",
    "HISTORY_DAYS",
    "MARK_KLINE_INTERVAL",
    "OPEN_INTEREST_PAGE",
    "OPEN_INTEREST_PERIOD",
    "OPEN_INTEREST_PERIOD_MS",
    "REQUEST_WINDOWS",
    "WEIGHTS",
    "parse_funding_rates",
    "parse_mark_klines",
    "parse_open_interest_hist",
]

EXCHANGE = "binance"

R = TypeVar("R")

DATA_PREFIX = "/futures/data"
"""Path of ``openInterestHist`` (and Binance's other trading statistics) below the host."""

WEIGHTS: Mapping[str, int] = MappingProxyType(
    {
        # No weight documented: it is limited by REQUEST_WINDOWS. Counted as 1 so the
        # budget never under-counts what the server may charge.
        "fundingRate": 1,
        "openInterestHist": 0,
    }
)
"""Request weight of the history endpoints that do not weigh by page size
(``markPriceKlines`` weighs as ``klines``: `flows.sources.binance.markets`)."""

REQUEST_WINDOWS: Mapping[str, tuple[str, int, float]] = MappingProxyType(
    {
        "fundingRate": ("funding", 500, 300.0),
        "fundingInfo": ("funding", 500, 300.0),
        "openInterestHist": ("open_interest_hist", 1000, 300.0),
    }
)
"""Endpoints with a request-count limit of their own: endpoint -> (shared window name,
requests, seconds). ``fundingRate`` and ``fundingInfo`` share one window."""

FUNDING_PAGE = 1000
"""Most funding events of one ``fundingRate`` request."""

OPEN_INTEREST_PAGE = 500
"""Most samples of one ``openInterestHist`` request."""

OPEN_INTEREST_PERIOD = "5m"
"""Sampling period of the open-interest history fetched (the finest Binance keeps)."""

OPEN_INTEREST_PERIOD_MS = 300_000

HISTORY_DAYS = 30
"""Days of open-interest history Binance keeps: an older startTime is refused."""

MARK_KLINE_INTERVAL = "1m"


class _FundingRow(msgspec.Struct, rename="camel"):
    symbol: str
    funding_rate: str
    funding_time: int
    mark_price: str = ""


class _OpenInterestRow(msgspec.Struct, rename="camel"):
    symbol: str
    sum_open_interest: str
    sum_open_interest_value: str
    timestamp: int | str


_decode_funding = msgspec.json.Decoder(list[_FundingRow]).decode
_decode_open_interest = msgspec.json.Decoder(list[_OpenInterestRow]).decode


def parse_funding_rates(body: bytes, symbol: str) -> list[FundingEvent]:
    """Parse a ``fundingRate`` body into `FundingEvent` records (source ``exchange``).

    Args:
        body: The 200 response's body.
        symbol: The symbol asked for; a row of another one is an error.

    Raises:
        BinanceResponseError: The body is not a list of funding rows of `symbol`.
    """
    return _records(
        "fundingRate",
        lambda: [
            FundingEvent(
                **_of(symbol, r.symbol),
                funding_time_us=r.funding_time * 1000,
                funding_rate=to_decimal(r.funding_rate, "fundingRate"),
                source="exchange",
                mark_price=to_decimal(r.mark_price, "markPrice") if r.mark_price else None,
            )
            for r in _decode_funding(body)
        ],
    )


def parse_open_interest_hist(body: bytes, symbol: str) -> list[OpenInterest]:
    """Parse an ``openInterestHist`` body into `OpenInterest` records (source ``history``).

    ``sumOpenInterest`` is the open interest in contracts (base asset),
    ``sumOpenInterestValue`` its value in the quote asset.

    Raises:
        BinanceResponseError: The body is not a list of open-interest rows of `symbol`.
    """
    return _records(
        "openInterestHist",
        lambda: [
            OpenInterest(
                **_of(symbol, r.symbol),
                time_us=_time_ms(r.timestamp) * 1000,
                open_interest=to_decimal(r.sum_open_interest, "sumOpenInterest"),
                source="history",
                open_interest_value=to_decimal(r.sum_open_interest_value, "sumOpenInterestValue"),
            )
            for r in _decode_open_interest(body)
        ],
    )


def parse_mark_klines(body: bytes, symbol: str) -> list[MarkKline]:
    """Parse a ``markPriceKlines`` body into `MarkKline` records (times in ms).

    The rows have the ``klines`` layout (`flows.sources.binance.responses.parse_klines`
    reads them); only the times and prices mean anything.

    Raises:
        BinanceResponseError: The body is not a list of kline rows.
    """
    return _records(
        "markPriceKlines",
        lambda: [
            MarkKline(
                **_of(symbol), open_time=k.open_time, open=k.open, high=k.high, low=k.low,
                close=k.close, close_time=k.close_time,
            )
            for k in parse_klines(body)
        ],
    )  # fmt: skip


class _WrongSymbol(FlowError):
    """A row names another symbol than the one asked for."""


def _records(endpoint: str, decode: Callable[[], list[R]]) -> list[R]:
    """What `decode` makes of a body, or `BinanceResponseError` naming the endpoint."""
    try:
        return decode()
    except (
        msgspec.DecodeError, BinanceDecodeError, BinanceResponseError, _WrongSymbol, ValueError
    ) as exc:  # fmt: skip
        raise BinanceResponseError(f"bad {endpoint} response: {exc}") from None


def _of(symbol: str, row_symbol: str | None = None) -> dict[str, Any]:
    """The exchange, market and symbol of a record; a row naming another symbol than the
    one asked for is an error."""
    if row_symbol is not None and row_symbol != symbol:
        raise _WrongSymbol(f"a row of {row_symbol!r} in the answer for {symbol!r}")
    return {"exchange": EXCHANGE, "market": "usdm", "symbol": symbol}


def _time_ms(value: int | str) -> int:
    if isinstance(value, str):
        if not value.isdigit():
            raise ValueError(f"timestamp={value!r} is not a time in ms")
        return int(value)
    return value
