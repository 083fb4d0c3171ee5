"""Which Binance streams a live ingest follows: the TRADING symbols, and per market
their trade, quote and (optionally) kline streams; on USDⓈ-M also each perpetual's mark
price and the market's liquidation orders."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flows.sources.binance.markets import binance_market
from flows.sources.binance.perps import FORCE_ORDER_STREAM, MARK_PRICE_STREAM
from schemas.trades import Market

KLINE_STREAM = "kline_1m"
"""The exchange's 1m klines, as a stream suffix (``btcusdt@kline_1m``)."""


def trading_symbols(exchange_info: dict[str, Any]) -> set[str]:
    """The symbols of an ``exchangeInfo`` response whose status is ``TRADING``.

    Args:
        exchange_info: The decoded response (spot or USDⓈ-M).

    Returns:
        Upper-case symbols, e.g. ``{"BTCUSDT", "ETHUSDT"}``.
    """
    return {
        s["symbol"]
        for s in exchange_info.get("symbols", [])
        if isinstance(s, dict) and s.get("status") == "TRADING" and isinstance(s.get("symbol"), str)
    }


def perpetual_symbols(exchange_info: dict[str, Any]) -> set[str]:
    """The TRADING perpetual contracts of a USDⓈ-M ``exchangeInfo`` response.

    Args:
        exchange_info: The decoded response; a spot one has no ``contractType`` and so no
            perpetual.

    Returns:
        Upper-case symbols whose ``contractType`` is ``PERPETUAL``.
    """
    return {
        s["symbol"]
        for s in exchange_info.get("symbols", [])
        if isinstance(s, dict)
        and s.get("status") == "TRADING"
        and s.get("contractType") == "PERPETUAL"
        and isinstance(s.get("symbol"), str)
    }


def streams_for(
    market: Market,
    symbols: Iterable[str],
    *,
    klines: bool = False,
    perpetuals: Iterable[str] = (),
) -> dict[str, str]:
    """The streams to follow for `symbols`, each mapped to its symbol.

    Args:
        market: ``spot`` (``@trade`` + ``@bookTicker``) or ``usdm`` (``@aggTrade`` +
            ``@bookTicker``).
        symbols: Upper-case symbols.
        klines: Also ``@kline_1m``, the exchange's 1m klines (for the cross-check).
        perpetuals: Perpetual contracts (USDⓈ-M) whose ``@markPrice@1s`` to follow; when
            there is any, ``!forceOrder@arr`` (every symbol's liquidations, mapped to
            ``""``: no one symbol) is followed once too.

    Returns:
        ``{"btcusdt@trade": "BTCUSDT", "btcusdt@bookTicker": "BTCUSDT", ...}``.
    """
    kind = binance_market(market).trade_kind
    out: dict[str, str] = {}
    for symbol in symbols:
        lower = symbol.lower()
        out[f"{lower}@{kind}"] = symbol
        out[f"{lower}@bookTicker"] = symbol
        if klines:
            out[f"{lower}@{KLINE_STREAM}"] = symbol
    marks = {f"{symbol.lower()}@{MARK_PRICE_STREAM}": symbol for symbol in perpetuals}
    if marks:
        out.update(marks)
        out[FORCE_ORDER_STREAM] = ""
    return out
