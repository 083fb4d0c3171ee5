"""Best bid and offer (Binance bookTicker): one quote per update, exact decimals."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from schemas.trades import Market


class Quote(msgspec.Struct, frozen=True, omit_defaults=True):
    """Top of the book of one symbol after one update.

    `update_id` is the exchange's order-book update id (Binance `u`): it orders quotes
    of one symbol. `time_us` is the exchange's time of the update when the stream gives
    one (USDⓈ-M does, spot bookTicker does not), else None; `received_us` is when we read
    it off the socket.
    """

    exchange: str
    market: Market
    symbol: str
    update_id: int
    bid_price: Decimal
    bid_qty: Decimal
    ask_price: Decimal
    ask_qty: Decimal
    received_us: int
    time_us: int | None = None

    @property
    def key(self) -> str:
        """Kafka key, the same as the symbol's trades."""
        return f"{self.exchange}:{self.market}:{self.symbol}"


_encoder = msgspec.json.Encoder(decimal_format="string")
encode_quote = _encoder.encode
"""Encode a quote to its wire form (JSON, decimals as strings)."""


def quote_decoder() -> msgspec.json.Decoder[Quote]:
    """A decoder from the wire form."""
    return msgspec.json.Decoder(Quote)
