"""Order-book depth: the best levels of one symbol's book (Binance partial depth, ``depth20``)."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from schemas.trades import Market

Level = tuple[Decimal, Decimal]
"""One price level: (price, quantity), exact decimals."""


class BookDepth(msgspec.Struct, frozen=True, omit_defaults=True):
    """The top levels of one symbol's book after one update (Binance ``<symbol>@depth20@100ms``).

    `bids` run from the best (highest) price down, `asks` from the best (lowest) up; a
    side may be shorter than 20 levels when the book is thin. `update_id` orders the
    snapshots of one symbol (Binance ``lastUpdateId`` on spot, ``u`` on USDⓈ-M).
    `time_us` is the exchange's time when the stream gives one (USDⓈ-M does, spot
    partial depth does not), else None; `received_us` is when we read it off the socket.
    """

    exchange: str
    market: Market
    symbol: str
    update_id: int
    bids: list[Level]
    asks: list[Level]
    received_us: int
    time_us: int | None = None

    @property
    def key(self) -> str:
        """Kafka key, the same as the symbol's trades."""
        return f"{self.exchange}:{self.market}:{self.symbol}"


class DepthWatch(msgspec.Struct, frozen=True):
    """The symbols of one market whose depth a consumer needs now (the paper engine: those
    with open orders). Each record is the whole set and replaces the previous one; it is
    repeated every `DEPTH_WATCH_EVERY_S` so a restarted ingest learns it."""

    exchange: str
    market: Market
    symbols: list[str]
    time_us: int

    @property
    def key(self) -> str:
        """Kafka key: one market's watch records stay ordered."""
        return f"{self.exchange}:{self.market}"


DEPTH_WATCH_EVERY_S = 30
"""How often the watch set is republished when it has not changed."""

_encoder = msgspec.json.Encoder(decimal_format="string")
encode_depth = _encoder.encode
"""Encode a depth record or a watch record to its wire form (JSON, decimals as strings)."""


def depth_decoder() -> msgspec.json.Decoder[BookDepth]:
    """A decoder of ``md.depth.v1`` values."""
    return msgspec.json.Decoder(BookDepth)


def watch_decoder() -> msgspec.json.Decoder[DepthWatch]:
    """A decoder of ``md.depth_watch.v1`` values."""
    return msgspec.json.Decoder(DepthWatch)
