"""Perpetuals records for tests (usdm), built from plain numbers: marks, open-interest
samples, liquidations and funding events, and a perpetual's 1s candle."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from schemas.candles import Candle
from schemas.perps import FundingEvent, Liquidation, MarkPrice, OpenInterest

EXCHANGE = "sim"
MARKET = "usdm"


def mark(
    t_ms: int,
    price: str,
    index: str,
    rate: str | None = "0.0001",
    next_funding_ms: int = 0,
    symbol: str = "AAA",
) -> MarkPrice:
    """A mark-price update at `t_ms`."""
    return MarkPrice(
        EXCHANGE,
        MARKET,
        symbol,
        t_ms * 1000,
        Decimal(price),
        Decimal(index),
        Decimal(index),
        next_funding_ms * 1000,
        t_ms * 1000,
        None if rate is None else Decimal(rate),
    )


def open_interest(t_ms: int, contracts: str, symbol: str = "AAA") -> OpenInterest:
    """An open-interest sample at `t_ms`, as the live poll gives it."""
    return OpenInterest(EXCHANGE, MARKET, symbol, t_ms * 1000, Decimal(contracts), "poll")


def liquidation(t_ms: int, side: str, qty: str, avg_price: str, symbol: str = "AAA") -> Liquidation:
    """A filled liquidation order at `t_ms` (SELL: a long liquidated)."""
    return Liquidation(
        EXCHANGE,
        MARKET,
        symbol,
        t_ms * 1000,
        side,  # type: ignore[arg-type]
        Decimal(avg_price),
        Decimal(avg_price),
        Decimal(qty),
        Decimal(qty),
        Decimal(qty),
        "FILLED",
        "LIMIT",
        "IOC",
        t_ms * 1000,
        t_ms * 1000,
    )


def funding(t_ms: int, rate: str, symbol: str = "AAA") -> FundingEvent:
    """A settled funding at `t_ms`, as the exchange's history gives it."""
    return FundingEvent(EXCHANGE, MARKET, symbol, t_ms * 1000, Decimal(rate), "exchange")


def perp_candle(candle: Candle) -> Candle:
    """The same candle of the perpetual (market usdm)."""
    return msgspec.structs.replace(candle, market=MARKET)
