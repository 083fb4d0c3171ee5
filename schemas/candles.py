"""Candles (klines) as the exchange defines them, with a version for revisions."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec

from schemas.trades import Market

Interval = Literal["1s", "1m"]

INTERVAL_MS: dict[str, int] = {"1s": 1_000, "1m": 60_000}
"""Length of each interval the candle flow builds, in milliseconds."""

ROLLUP_INTERVAL_MS: dict[str, int] = {
    **INTERVAL_MS,
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}
"""Every candle interval tickscan serves, in milliseconds: the built ones and the
rollups from 1m (aligned to UTC epoch multiples, so 1d starts at 00:00 UTC)."""


class Candle(msgspec.Struct, frozen=True):
    """One kline, field for field as Binance's kline files name them.

    `close_time = open_time + interval - 1 ms`. A flat candle (an interval with no trades
    after the symbol's first trade) has open = high = low = close = the previous close,
    zero volumes and count, and no trade ids. `version` starts at 1 and rises each time a
    late trade or a repair revises the candle; the highest version is the candle.
    """

    exchange: str
    market: Market
    symbol: str
    interval: Interval
    open_time: int
    close_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    count: int
    taker_buy_volume: Decimal
    taker_buy_quote_volume: Decimal
    first_trade_id: int | None
    last_trade_id: int | None
    version: int

    @property
    def key(self) -> str:
        """Kafka key, the same as the trades' so a symbol stays in one partition."""
        return f"{self.exchange}:{self.market}:{self.symbol}"

    @property
    def vwap(self) -> Decimal | None:
        """Volume-weighted average price, or None for a flat candle."""
        return self.quote_volume / self.volume if self.volume else None


_FIELDS = Candle.__struct_fields__
KLINE_FIELDS: tuple[str, ...] = _FIELDS[_FIELDS.index("open") : _FIELDS.index("first_trade_id")]
"""A kline's values, in `Candle` order: prices, volumes and count (not its identity, times,
trade ids or version), the fields every source of klines has."""


_encoder = msgspec.json.Encoder(decimal_format="string")
encode_candle = _encoder.encode
"""Encode a candle to its wire form (JSON, decimals as strings)."""


def candle_decoder() -> msgspec.json.Decoder[Candle]:
    """A decoder from the wire form."""
    return msgspec.json.Decoder(Candle)
