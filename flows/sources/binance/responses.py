"""Binance REST response bodies parsed into typed rows with exact Decimals.

Each parser takes a 200 response's body as bytes and raises `BinanceResponseError` when
it is not what the endpoint documents. A real ``/api/v3/klines`` row::

    [1634943780000, "60685.22000000", "60729.84000000", "60670.90000000",
     "60719.27000000", "21.63272000", 1634943839999, "1313200.01340410", 617,
     "12.28492000", "745719.41022840", "0"]
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from flows.sources.binance.errors import BinanceResponseError
from flows.sources.binance.trades import BinanceDecodeError, to_decimal, wire_trade
from schemas.tickers import Ticker24h
from schemas.trades import Market, Trade


class Kline(msgspec.Struct, frozen=True):
    """One Binance kline row, with exact decimals; times in ms since the epoch (UTC)."""

    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    close_time: int
    quote_volume: Decimal
    count: int
    taker_buy_volume: Decimal
    taker_buy_quote_volume: Decimal


class _AggTradeRow(msgspec.Struct):
    a: int
    p: str
    q: str
    f: int
    l: int  # noqa: E741 - Binance's own field name
    T: int
    m: bool


class _TradeRow(msgspec.Struct, rename="camel"):
    id: int
    price: str
    qty: str
    time: int
    is_buyer_maker: bool


class _TickerRow(msgspec.Struct, rename="camel"):
    symbol: str
    open_price: str
    high_price: str
    low_price: str
    last_price: str
    volume: str
    quote_volume: str
    open_time: int
    close_time: int
    count: int


_decode_rows = msgspec.json.Decoder(list[list[Any]]).decode
_decode_tickers = msgspec.json.Decoder(list[_TickerRow]).decode
_decode_agg = msgspec.json.Decoder(list[_AggTradeRow]).decode
_decode_trades = msgspec.json.Decoder(list[_TradeRow]).decode


def parse_klines(body: bytes) -> list[Kline]:
    """Parse a ``klines`` response body.

    Raises:
        BinanceResponseError: The body is not a list of kline rows.
    """
    try:
        rows = _decode_rows(body)
        return [
            Kline(
                open_time=_int(r[0]),
                open=to_decimal(r[1], "open"),
                high=to_decimal(r[2], "high"),
                low=to_decimal(r[3], "low"),
                close=to_decimal(r[4], "close"),
                volume=to_decimal(r[5], "volume"),
                close_time=_int(r[6]),
                quote_volume=to_decimal(r[7], "quote_volume"),
                count=_int(r[8]),
                taker_buy_volume=to_decimal(r[9], "taker_buy_volume"),
                taker_buy_quote_volume=to_decimal(r[10], "taker_buy_quote_volume"),
            )
            for r in rows
        ]
    except (msgspec.DecodeError, BinanceDecodeError, IndexError, TypeError) as exc:
        raise BinanceResponseError(f"bad klines response: {exc}") from None


def parse_agg_trades(body: bytes, market: Market, symbol: str) -> list[Trade]:
    """Parse an ``aggTrades`` response body into aggregate `Trade`s.

    Raises:
        BinanceResponseError: The body is not a list of aggregate trades.
    """
    try:
        return [
            wire_trade(
                market, symbol, r.a, r.p, r.q, r.T, r.m, first_trade_id=r.f, last_trade_id=r.l
            )
            for r in _decode_agg(body)
        ]
    except (msgspec.DecodeError, BinanceDecodeError) as exc:
        raise BinanceResponseError(f"bad aggTrades response: {exc}") from None


def parse_trades(body: bytes, market: Market, symbol: str) -> list[Trade]:
    """Parse a ``trades`` or ``historicalTrades`` response body into `Trade`s.

    Raises:
        BinanceResponseError: The body is not a list of trades.
    """
    try:
        return [
            wire_trade(
                market, symbol, r.id, r.price, r.qty, r.time, r.is_buyer_maker,
                names=("price", "qty"),
            )
            for r in _decode_trades(body)
        ]  # fmt: skip
    except (msgspec.DecodeError, BinanceDecodeError) as exc:
        raise BinanceResponseError(f"bad trades response: {exc}") from None


def parse_tickers(body: bytes, market: Market) -> list[Ticker24h]:
    """Parse a ``ticker/24hr`` response for every symbol into `Ticker24h` rows.

    A real USDⓈ-M row (spot adds ``prevClosePrice``, bid and ask)::

        {"symbol":"BTCUSDT","priceChange":"-94.99999800","priceChangePercent":"-95.960",
         "weightedAvgPrice":"0.29628482","lastPrice":"4.00000200","lastQty":"200.00000000",
         "openPrice":"99.00000000","highPrice":"100.00000000","lowPrice":"0.10000000",
         "volume":"8913.30000000","quoteVolume":"15.30000000","openTime":1499783499040,
         "closeTime":1499869899040,"firstId":28385,"lastId":28460,"count":76}

    Raises:
        BinanceResponseError: The body is not a list of tickers.
    """
    try:
        return [
            Ticker24h(
                exchange="binance",
                market=market,
                symbol=r.symbol,
                open_time_ms=r.open_time,
                close_time_ms=r.close_time,
                open_price=to_decimal(r.open_price, "openPrice"),
                last_price=to_decimal(r.last_price, "lastPrice"),
                high_price=to_decimal(r.high_price, "highPrice"),
                low_price=to_decimal(r.low_price, "lowPrice"),
                volume=to_decimal(r.volume, "volume"),
                quote_volume=to_decimal(r.quote_volume, "quoteVolume"),
                count=r.count,
            )
            for r in _decode_tickers(body)
        ]
    except (msgspec.DecodeError, BinanceDecodeError) as exc:
        raise BinanceResponseError(f"bad ticker/24hr response: {exc}") from None


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value
