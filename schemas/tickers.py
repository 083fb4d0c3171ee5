"""The exchange's rolling 24h statistics of one symbol (Binance `GET /ticker/24hr`)."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from schemas.trades import Market


class Ticker24h(msgspec.Struct, frozen=True, omit_defaults=True):
    """The exchange's own 24h figures for one symbol, as of `close_time_ms`.

    A fresh install has no 24 hours of candles yet; these figures let the board show a 24h
    change and quote volume at once, until the symbol's own 1m history covers the day
    (candles win from then on). Exact decimals, like trades.
    """

    exchange: str
    market: Market
    symbol: str
    open_time_ms: int
    """Start of the exchange's 24h window (Binance `openTime`)."""
    close_time_ms: int
    """End of the window (Binance `closeTime`): the figures are as of this time."""
    open_price: Decimal
    """The price at `open_time_ms` (Binance `openPrice`)."""
    last_price: Decimal
    high_price: Decimal
    low_price: Decimal
    volume: Decimal
    quote_volume: Decimal
    count: int
    """Trades in the window (Binance `count`)."""

    @property
    def key(self) -> str:
        """Kafka key, the same as the symbol's trades."""
        return f"{self.exchange}:{self.market}:{self.symbol}"


_encoder = msgspec.json.Encoder(decimal_format="string")
encode_ticker = _encoder.encode
"""Encode a ticker to its wire form (JSON, decimals as strings)."""


def ticker_decoder() -> msgspec.json.Decoder[Ticker24h]:
    """A decoder from the wire form."""
    return msgspec.json.Decoder(Ticker24h)
