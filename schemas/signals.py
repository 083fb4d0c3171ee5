"""Signals: a named market event on one symbol and timeframe, emitted once per occurrence."""

from __future__ import annotations

from typing import Literal

import msgspec

from schemas.trades import Market

Timeframe = Literal["1m", "5m", "15m", "1h", "4h", "1d"]
"""Candle intervals signals are evaluated on (each at its candle's close)."""

Direction = Literal["up", "down"]


class Signal(msgspec.Struct, frozen=True):
    """One occurrence of a signal.

    `time_ms` is the close of the candle that triggered it (its `close_time` + 1 ms),
    in exchange time; `(exchange, market, symbol, name, timeframe, time_ms)` identifies
    the occurrence, so a rerun writes the same row. `value` is the signal's headline
    figure (e.g. the relative volume of a volume spike) and `details` the rest.
    """

    exchange: str
    market: Market
    symbol: str
    name: str
    timeframe: Timeframe
    time_ms: int
    direction: Direction
    price: float
    value: float
    details: dict[str, float] = msgspec.field(default_factory=dict)

    @property
    def key(self) -> str:
        """Kafka key, the symbol's, so its signals stay ordered."""
        return f"{self.exchange}:{self.market}:{self.symbol}"


_encoder = msgspec.json.Encoder()
encode_signal = _encoder.encode
"""Encode a signal to its wire form (JSON)."""


def signal_decoder() -> msgspec.json.Decoder[Signal]:
    """A decoder from the wire form."""
    return msgspec.json.Decoder(Signal)
