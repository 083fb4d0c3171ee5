"""Longer bars from shorter candles: the one set of roll-up rules, and the builders using it.

Every longer bar tickscan makes follows these rules (DESIGN.md, "Candles: the exchange's
own rules"): the candle engine's 1m candles from its 1s candles (`flows.candles.engine`),
the API's forming candles of 1m .. 1d (`api.live.candles`), the signals flow's 5m .. 1d
bars (`flows.signals.bars`, `flows.signals.warm_bars`), and the ClickHouse views `candles_5m` ..
`candles_1d`, which state the same rules in SQL (`infra/clickhouse/007_rollups.sql`).

- A flat part (count 0) is skipped: it carries the previous close, which is not a trade
  of the longer bar (an interval whose first parts were quiet would otherwise get the
  wrong open, high or low).
- Open is the open of the earliest traded part, close the close of the latest (by open
  time, in whatever order the parts arrive); high and low are the extremes of the traded
  parts.
- Volume, quote volume, count and the taker-buy volumes are sums; on `Decimal`s they are
  exact (no float drift), added in the order the parts come.
- The first trade id is the smallest of the parts', the last trade id the largest (parts
  without ids, such as klines fetched from the exchange, add none).
- A wholly quiet interval is itself flat: open = high = low = close = the close its
  latest flat part carries, zero sums, no trade ids.

Two builders apply them. `BarBuilder` folds candles (anything with the kline fields:
`schemas.candles.Candle`, the engine's accumulators) exactly, one at a time and in any
order, and two builders merge; `rollup` builds one bar from its parts at once.
`rollup_columns` builds many bars at once from float columns (numpy), for the signal
bars, where the prices are floats anyway and a day of minutes is rolled up in one call.

This module is pure (no I/O) and imports only the standard library, so both `flows` and
`api` use it; numpy is imported by `rollup_columns` alone, so a process that builds only
exact bars (the API) never loads it.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    import numpy as np

ZERO = Decimal(0)

COLUMN_ROWS = ("open_time", "open", "high", "low", "close", "volume", "trades", "version")
"""Rows of a float bar column (`rollup_columns`): one bar per column, these rows in order."""
OPEN_TIME, OPEN, HIGH, LOW, CLOSE, VOLUME, TRADES, VERSION = range(len(COLUMN_ROWS))


class Part(Protocol):
    """A shorter candle as the builders read it: the kline fields of
    `schemas.candles.Candle` (a flat part has count 0 and its close is the one it carries)."""

    @property
    def open_time(self) -> int: ...
    @property
    def open(self) -> Decimal: ...
    @property
    def high(self) -> Decimal: ...
    @property
    def low(self) -> Decimal: ...
    @property
    def close(self) -> Decimal: ...
    @property
    def volume(self) -> Decimal: ...
    @property
    def quote_volume(self) -> Decimal: ...
    @property
    def count(self) -> int: ...
    @property
    def taker_buy_volume(self) -> Decimal: ...
    @property
    def taker_buy_quote_volume(self) -> Decimal: ...
    @property
    def first_trade_id(self) -> int | None: ...
    @property
    def last_trade_id(self) -> int | None: ...


class BarBuilder:
    """One longer bar, built exactly from its parts given one at a time in any order.

    While no traded part has come, `open`, `high`, `low` and `close` are None and
    `carried` holds the close of the latest flat part (the bar's price if it stays quiet):
    `last_close` is the bar's close either way. Parts are told apart by their open time;
    give each part once (a revised part means building the bar again).

    Args:
        open_time: Open time of the longer bar, in ms.
    """

    __slots__ = (
        "carried",
        "carried_at",
        "close",
        "close_at",
        "count",
        "first_trade_id",
        "high",
        "last_trade_id",
        "low",
        "open",
        "open_at",
        "open_time",
        "quote_volume",
        "taker_buy_quote_volume",
        "taker_buy_volume",
        "volume",
    )

    def __init__(self, open_time: int) -> None:
        self.open_time = open_time
        self.open: Decimal | None = None
        self.open_at = -1
        self.high: Decimal | None = None
        self.low: Decimal | None = None
        self.close: Decimal | None = None
        self.close_at = -1
        self.carried: Decimal | None = None
        self.carried_at = -1
        self.volume = ZERO
        self.quote_volume = ZERO
        self.count = 0
        self.taker_buy_volume = ZERO
        self.taker_buy_quote_volume = ZERO
        self.first_trade_id: int | None = None
        self.last_trade_id: int | None = None

    @property
    def last_close(self) -> Decimal | None:
        """The bar's close: its latest traded part's, else the close its flats carry."""
        return self.carried if self.close is None else self.close

    def add(self, part: Part) -> None:
        """Fold one part in (a flat one only carries its close)."""
        self.volume += part.volume
        self.quote_volume += part.quote_volume
        self.taker_buy_volume += part.taker_buy_volume
        self.taker_buy_quote_volume += part.taker_buy_quote_volume
        if part.count:
            self.add_prices(part)
        elif part.open_time > self.carried_at:
            self.carried, self.carried_at = part.close, part.open_time

    def add_prices(self, part: Part) -> None:
        """Fold in what a traded part adds besides its volumes: prices, count, trade ids."""
        at = part.open_time
        self.count += part.count
        if self.open is None:
            self.open, self.open_at, self.high, self.low = part.open, at, part.high, part.low
            self.close, self.close_at = part.close, at
        else:
            if at < self.open_at:
                self.open, self.open_at = part.open, at
            if at > self.close_at:
                self.close, self.close_at = part.close, at
            if part.high > self.high:  # type: ignore[operator]
                self.high = part.high
            if part.low < self.low:  # type: ignore[operator]
                self.low = part.low
        first = part.first_trade_id
        if first is not None and (self.first_trade_id is None or first < self.first_trade_id):
            self.first_trade_id = first
        last = part.last_trade_id
        if last is not None and (self.last_trade_id is None or last > self.last_trade_id):
            self.last_trade_id = last

    def merge(self, other: BarBuilder) -> None:
        """Fold in the parts another builder of the same bar has (none given to both)."""
        self.volume += other.volume
        self.quote_volume += other.quote_volume
        self.taker_buy_volume += other.taker_buy_volume
        self.taker_buy_quote_volume += other.taker_buy_quote_volume
        if other.carried_at > self.carried_at:
            self.carried, self.carried_at = other.carried, other.carried_at
        if other.open is None:
            return
        self.count += other.count
        if self.open is None:
            self.open, self.open_at, self.high, self.low = (
                other.open,
                other.open_at,
                other.high,
                other.low,
            )
            self.close, self.close_at = other.close, other.close_at
        else:
            if other.open_at < self.open_at:
                self.open, self.open_at = other.open, other.open_at
            if other.close_at > self.close_at:
                self.close, self.close_at = other.close, other.close_at
            if other.high > self.high:  # type: ignore[operator]
                self.high = other.high
            if other.low < self.low:  # type: ignore[operator]
                self.low = other.low
        first = other.first_trade_id
        if first is not None and (self.first_trade_id is None or first < self.first_trade_id):
            self.first_trade_id = first
        last = other.last_trade_id
        if last is not None and (self.last_trade_id is None or last > self.last_trade_id):
            self.last_trade_id = last


def rollup(open_time: int, parts: Iterable[Part]) -> Part | None:
    """One longer bar from its parts, given at once in any order.

    Args:
        open_time: Open time of the longer bar, in ms.
        parts: Its shorter candles (flat ones are skipped).

    Returns:
        The bar (a `BarBuilder` with every price set), or None when no part traded (a
        wholly quiet interval: see `BarBuilder` for its flat price).
    """
    # `BarBuilder.add` with the bar's state in locals: the candle engine rolls every
    # symbol's minute up from its seconds, and this keeps that as fast as sorting them.
    bar = BarBuilder(open_time)
    volume = quote_volume = taker_buy_volume = taker_buy_quote_volume = ZERO
    for part in parts:
        volume += part.volume
        quote_volume += part.quote_volume
        taker_buy_volume += part.taker_buy_volume
        taker_buy_quote_volume += part.taker_buy_quote_volume
        if part.count:
            bar.add_prices(part)
        elif part.open_time > bar.carried_at:
            bar.carried, bar.carried_at = part.close, part.open_time
    bar.volume = volume
    bar.quote_volume = quote_volume
    bar.taker_buy_volume = taker_buy_volume
    bar.taker_buy_quote_volume = taker_buy_quote_volume
    return None if bar.open is None else cast(Part, bar)


def rollup_columns(open_time: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """Fold runs of consecutive shorter float bars into longer bars, many at once.

    `parts` is rows (`COLUMN_ROWS`) x longer bars x shorter bars each (oldest first); the
    result is rows x longer bars, each at version 1. The rules are `BarBuilder`'s on
    floats: volumes and trades are summed left to right, so one bar rolled up live and
    many at once agree to the last bit.

    Args:
        open_time: Open time of each longer bar, in ms.
        parts: The shorter bars.

    Returns:
        The longer bars.
    """
    # Here, not at the top: the API builds only exact bars and never loads numpy.
    import numpy as np

    traded = parts[TRADES] > 0
    any_traded = traded.any(axis=1)
    width = traded.shape[1]
    rows = np.arange(traded.shape[0])
    first = traded.argmax(axis=1)
    last = width - 1 - traded[:, ::-1].argmax(axis=1)
    close = np.where(any_traded, parts[CLOSE, rows, last], parts[CLOSE, :, -1])
    volume = np.zeros(len(rows))
    trades = np.zeros(len(rows))
    for i in range(width):
        volume += np.where(traded[:, i], parts[VOLUME, :, i], 0.0)
        trades += np.where(traded[:, i], parts[TRADES, :, i], 0.0)
    return np.stack(
        (
            np.asarray(open_time, dtype=float),
            np.where(any_traded, parts[OPEN, rows, first], close),
            np.where(any_traded, np.where(traded, parts[HIGH], -np.inf).max(axis=1), close),
            np.where(any_traded, np.where(traded, parts[LOW], np.inf).min(axis=1), close),
            close,
            volume,
            trades,
            np.ones(len(rows)),
        )
    )
