"""Normalised trades: one exchange print, exact decimals, exchange time in microseconds."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec

from schemas.errors import SchemaError

Market = Literal["spot", "usdm"]
"""`spot` for spot markets, `usdm` for USDⓈ-M perpetual and delivery futures."""


class Trade(msgspec.Struct, frozen=True, omit_defaults=True):
    """One trade (or one aggregate trade) as printed by the exchange.

    Prices and quantities are `Decimal` in memory and decimal strings on the wire, so
    sums equal the exchange's to the last digit. `time_us` is the exchange's own trade
    time (Binance `T`), never the time we received it.

    An aggregate trade (Binance `aggTrade`) carries the range of raw trade ids it
    folds together in `first_trade_id`..`last_trade_id`; its `trade_id` is the
    aggregate id. A plain trade leaves both unset.
    """

    exchange: str
    market: Market
    symbol: str
    trade_id: int
    price: Decimal
    qty: Decimal
    time_us: int
    buyer_is_maker: bool
    first_trade_id: int | None = None
    last_trade_id: int | None = None

    @property
    def count(self) -> int:
        """Raw trades this print stands for (an aggTrade counts `l - f + 1`)."""
        if self.first_trade_id is None or self.last_trade_id is None:
            return 1
        return self.last_trade_id - self.first_trade_id + 1

    @property
    def key(self) -> str:
        """Kafka key: one symbol's trades stay ordered in one partition."""
        return f"{self.exchange}:{self.market}:{self.symbol}"


class InvalidTrade(SchemaError):
    """A message decoded but breaks a rule no real trade breaks."""


def check_trade(trade: Trade) -> Trade:
    """Reject a trade no exchange would print.

    Args:
        trade: A decoded trade.

    Returns:
        The same trade.

    Raises:
        InvalidTrade: On a non-positive price or quantity, a negative id or time, or an
            aggregate id range that runs backwards.
    """
    if not trade.price.is_finite() or trade.price <= 0:
        raise InvalidTrade(f"price must be a positive decimal, got {trade.price}")
    if not trade.qty.is_finite() or trade.qty <= 0:
        raise InvalidTrade(f"qty must be a positive decimal, got {trade.qty}")
    if trade.trade_id < 0 or trade.time_us < 0:
        raise InvalidTrade("trade_id and time_us must not be negative")
    if (trade.first_trade_id is None) != (trade.last_trade_id is None):
        raise InvalidTrade("first_trade_id and last_trade_id come together")
    if (
        trade.first_trade_id is not None
        and trade.last_trade_id is not None
        and trade.last_trade_id < trade.first_trade_id
    ):
        raise InvalidTrade("last_trade_id is before first_trade_id")
    if not trade.symbol or not trade.exchange:
        raise InvalidTrade("exchange and symbol must not be empty")
    return trade


_encoder = msgspec.json.Encoder(decimal_format="string")
encode_trade = _encoder.encode
"""Encode a trade to its wire form (JSON, decimals as strings)."""


def trade_decoder() -> msgspec.json.Decoder[Trade]:
    """A decoder from the wire form; build one per consumer (decoders are not shared)."""
    return msgspec.json.Decoder(Trade)
