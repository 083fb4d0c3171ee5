"""One symbol's candles inside the engine: a candle's running sums, each interval's emitted
series, and the candles they put out.

Pure code, no I/O: `flows.candles.engine.PartitionCandles` holds a `SymbolCandles` per
symbol and closes its windows; `flows.candles.resume` rebuilds one from the store.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flows.candles.trade_ids import DEFAULT_MAX_RANGES, TradeIds
from schemas.bars import Part
from schemas.candles import Candle
from schemas.trades import Trade

SECOND_MS = 1_000
MINUTE_MS = 60_000
ZERO = Decimal(0)


class CandleAcc:
    """The running sums of one real candle (one with at least one trade).

    `open_key` and `close_key` order the prints so that trades that arrive out of order
    still give the exchange's open and close: the first raw trade id of the open print and
    the last of the close print (an aggregate trade's raw ids are in the order of its
    aggregate id), so a candle read back from the store, which keeps only its first and
    last trade ids, orders the prints it is given later the same way.
    """

    __slots__ = (
        "close",
        "close_key",
        "count",
        "first_trade_id",
        "high",
        "last_trade_id",
        "low",
        "open",
        "open_key",
        "open_time",
        "quote_volume",
        "taker_buy_quote_volume",
        "taker_buy_volume",
        "volume",
    )

    def __init__(self, open_time: int, trade: Trade, quote: Decimal) -> None:
        """Start a candle with its first trade; `quote` is `trade.price * trade.qty`."""
        price = trade.price
        qty = trade.qty
        self.open_time = open_time
        self.open = self.high = self.low = self.close = price
        self.volume = qty
        self.quote_volume = quote
        self.count = trade.count
        if trade.buyer_is_maker:
            self.taker_buy_volume = ZERO
            self.taker_buy_quote_volume = ZERO
        else:
            self.taker_buy_volume = qty
            self.taker_buy_quote_volume = quote
        first = trade.first_trade_id
        if first is None:
            self.first_trade_id = self.last_trade_id = trade.trade_id
        else:
            last = trade.last_trade_id
            assert last is not None, "check_trade: first and last ids come together"
            self.first_trade_id = first
            self.last_trade_id = last
        self.open_key = self.first_trade_id
        self.close_key = self.last_trade_id

    @classmethod
    def from_candle(cls, candle: Candle) -> CandleAcc:
        """The sums of a stored real candle, to fold more trades into or roll up."""
        acc = cls.__new__(cls)
        acc.open_time = candle.open_time
        acc.open = candle.open
        acc.high = candle.high
        acc.low = candle.low
        acc.close = candle.close
        acc.volume = candle.volume
        acc.quote_volume = candle.quote_volume
        acc.count = candle.count
        acc.taker_buy_volume = candle.taker_buy_volume
        acc.taker_buy_quote_volume = candle.taker_buy_quote_volume
        acc.first_trade_id = acc.open_key = candle.first_trade_id or 0
        acc.last_trade_id = acc.close_key = candle.last_trade_id or 0
        return acc

    def add(self, trade: Trade, quote: Decimal) -> None:
        """Fold one more trade of the same window in; `quote` is `trade.price * trade.qty`.

        The caller computes `quote` because it has already, to validate the trade.
        """
        price = trade.price
        qty = trade.qty
        if price > self.high:
            self.high = price
        elif price < self.low:
            self.low = price
        first = trade.first_trade_id
        last: int
        if first is None:
            first = last = trade.trade_id
            self.count += 1
        else:
            last = trade.last_trade_id  # type: ignore[assignment]  # check_trade: both or none
            self.count += last - first + 1
        if last >= self.close_key:
            self.close = price
            self.close_key = last
        elif first < self.open_key:
            self.open = price
            self.open_key = first
        self.volume += qty
        self.quote_volume += quote
        if not trade.buyer_is_maker:
            self.taker_buy_volume += qty
            self.taker_buy_quote_volume += quote
        if first < self.first_trade_id:
            self.first_trade_id = first
        if last > self.last_trade_id:
            self.last_trade_id = last


class Series:
    """What has been emitted of one symbol's candles of one interval.

    Emitted windows are `[first, upto)`; every one of them is either real (its sums are
    kept while it is within the revision horizon) or flat (carrying the close before it).
    """

    __slots__ = ("first", "interval_ms", "last_close", "name", "upto", "versions")

    def __init__(self, name: str, interval_ms: int) -> None:
        self.name = name
        self.interval_ms = interval_ms
        self.first: int | None = None
        self.upto: int | None = None
        self.last_close: Decimal | None = None
        # Only windows emitted more than once are listed; every other one is at version 1.
        self.versions: dict[int, int] = {}

    def bump(self, window: int) -> int:
        version = self.versions.get(window, 1) + 1
        self.versions[window] = version
        return version

    def prune(self, before: int) -> None:
        if self.versions:
            self.versions = {w: v for w, v in self.versions.items() if w >= before}


class SymbolCandles:
    """One symbol's open windows, emitted series, revision history and folded trade ids."""

    __slots__ = (
        "exchange",
        "history",
        "ids",
        "kept_from",
        "m1",
        "market",
        "open",
        "s1",
        "symbol",
    )

    def __init__(
        self, exchange: str, market: str, symbol: str, max_id_ranges: int = DEFAULT_MAX_RANGES
    ) -> None:
        self.exchange = exchange
        self.market = market
        self.symbol = symbol
        # Raw trade ids folded (or dead-lettered) already: a copy of one is a duplicate.
        self.ids = TradeIds(max_id_ranges)
        # 1s windows that have trades and are not emitted yet.
        self.open: dict[int, CandleAcc] = {}
        # Emitted real 1s candles, kept for revisions and for rolling minutes up.
        self.history: dict[int, CandleAcc] = {}
        # Start of the oldest minute whose 1s history is whole (None: nothing dropped).
        self.kept_from: int | None = None
        self.s1 = Series("1s", SECOND_MS)
        self.m1 = Series("1m", MINUTE_MS)

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        # A snapshot taken before trade ids were kept has none: start them empty.
        for name, value in state[1].items():
            setattr(self, name, value)
        if "ids" not in state[1]:
            self.ids = TradeIds()


_Values = tuple[
    Decimal, Decimal, Decimal, Decimal, Decimal, Decimal, int, Decimal, Decimal,
    int | None, int | None,
]  # fmt: skip
"""A candle's kline fields, open .. last_trade_id, in `Candle` order."""


def candle_of(
    state: SymbolCandles,
    series: Series,
    window: int,
    acc: Part | None,
    flat_close: Decimal | None,
    version: int,
) -> Candle:
    """The candle of `window` in one of a symbol's series, at `version`.

    Args:
        state: The symbol.
        series: Its 1s or 1m series.
        window: The candle's open time.
        acc: Its sums, or None for a flat candle.
        flat_close: The close a flat candle carries (None for a real one).
        version: 1 when first emitted, higher for each revision.
    """
    if acc is None:
        assert flat_close is not None
        c = flat_close
        values: _Values = (c, c, c, c, ZERO, ZERO, 0, ZERO, ZERO, None, None)
    else:
        values = (
            acc.open, acc.high, acc.low, acc.close, acc.volume, acc.quote_volume, acc.count,
            acc.taker_buy_volume, acc.taker_buy_quote_volume, acc.first_trade_id,
            acc.last_trade_id,
        )  # fmt: skip
    return Candle(
        state.exchange,
        state.market,  # type: ignore[arg-type]
        state.symbol,
        series.name,  # type: ignore[arg-type]
        window,
        window + series.interval_ms - 1,
        *values,
        version,
    )
