"""Forming candles of any interval (1s … 1d), built live from the closed 1s and 1m candles."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from schemas.candles import ROLLUP_INTERVAL_MS as INTERVAL_MS
from schemas.candles import Candle

_MINUTE_MS = 60_000
_ZERO = Decimal(0)


class Bar(msgspec.Struct, frozen=True):
    """A candle of a live stream: the forming candle of an interval, or its close.

    Fields are the kline fields of `schemas.candles.Candle` (decimals as strings on the
    wire), for any interval. `version` is 1 while the bar forms and at its close; a late
    trade that revises a closed bar sends the bar again, closed, with a higher version
    (a 1s bar has its candle's version).
    """

    exchange: str
    market: str
    symbol: str
    interval: str
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
    closed: bool


encode_bar = msgspec.json.Encoder(decimal_format="string").encode
"""Encode a bar to JSON, decimals as strings (exact)."""


class _Acc:
    """A partial aggregate of candles; merging is order-free, so parts fold in any order.

    Open and close are kept with their times (earliest real open, latest close) instead of
    relying on arrival order. Flat candles (count 0) add their close, which is the previous
    close, but never an open, high or low: a flat carries no trade (DESIGN.md).
    """

    __slots__ = (
        "close",
        "close_t",
        "count",
        "first_id",
        "high",
        "last_id",
        "low",
        "open",
        "open_t",
        "quote_volume",
        "taker_buy_quote_volume",
        "taker_buy_volume",
        "volume",
    )

    def __init__(self) -> None:
        self.open: Decimal | None = None
        self.open_t = -1
        self.high: Decimal | None = None
        self.low: Decimal | None = None
        self.close: Decimal | None = None
        self.close_t = -1
        self.volume = _ZERO
        self.quote_volume = _ZERO
        self.count = 0
        self.taker_buy_volume = _ZERO
        self.taker_buy_quote_volume = _ZERO
        self.first_id: int | None = None
        self.last_id: int | None = None

    def add(self, c: Candle) -> None:
        if c.open_time > self.close_t:
            self.close, self.close_t = c.close, c.open_time
        self.volume += c.volume
        self.quote_volume += c.quote_volume
        self.count += c.count
        self.taker_buy_volume += c.taker_buy_volume
        self.taker_buy_quote_volume += c.taker_buy_quote_volume
        if not c.count:
            return
        if self.open is None or c.open_time < self.open_t:
            self.open, self.open_t = c.open, c.open_time
        self.high = c.high if self.high is None else max(self.high, c.high)
        self.low = c.low if self.low is None else min(self.low, c.low)
        self.first_id = _pick(min, self.first_id, c.first_trade_id)
        self.last_id = _pick(max, self.last_id, c.last_trade_id)

    def merge(self, other: _Acc) -> None:
        if other.close is not None and other.close_t > self.close_t:
            self.close, self.close_t = other.close, other.close_t
        self.volume += other.volume
        self.quote_volume += other.quote_volume
        self.count += other.count
        self.taker_buy_volume += other.taker_buy_volume
        self.taker_buy_quote_volume += other.taker_buy_quote_volume
        if other.open is None:
            return
        if self.open is None or other.open_t < self.open_t:
            self.open, self.open_t = other.open, other.open_t
        assert other.high is not None and other.low is not None
        self.high = other.high if self.high is None else max(self.high, other.high)
        self.low = other.low if self.low is None else min(self.low, other.low)
        self.first_id = _pick(min, self.first_id, other.first_id)
        self.last_id = _pick(max, self.last_id, other.last_id)


def _pick(choose: Any, a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else choose(a, b)


class _Part:
    """Member candles of one interval (1s or 1m) by open time, latest version each, with
    their aggregate cached: a new member folds in, a revised or removed one recomputes."""

    __slots__ = ("_acc", "members")

    def __init__(self) -> None:
        self.members: dict[int, Candle] = {}
        self._acc: _Acc | None = _Acc()

    def put(self, candle: Candle) -> bool:
        old = self.members.get(candle.open_time)
        if old is not None and old.version >= candle.version:
            return False
        self.members[candle.open_time] = candle
        if old is None and self._acc is not None:
            self._acc.add(candle)
        else:
            self._acc = None
        return True

    def drop(self, start: int, end: int) -> None:
        gone = [t for t in self.members if start <= t < end]
        for t in gone:
            del self.members[t]
        if gone:
            self._acc = None

    def acc(self) -> _Acc:
        if self._acc is None:
            self._acc = _Acc()
            for candle in self.members.values():
                self._acc.add(candle)
        return self._acc


class _Window:
    """One interval's members: closed 1m candles, and the 1s candles of minutes that
    have no 1m candle yet (the forming minute). A minute's own candle replaces its seconds."""

    __slots__ = ("closed", "last", "minutes", "open_time", "seconds", "version")

    def __init__(self, open_time: int) -> None:
        self.open_time = open_time
        self.minutes = _Part()
        self.seconds = _Part()
        self.closed = False
        self.version = 1
        self.last: Bar | None = None

    def put(self, candle: Candle) -> bool:
        if candle.interval == "1m":
            if not self.minutes.put(candle):
                return False
            self.seconds.drop(candle.open_time, candle.open_time + _MINUTE_MS)
            return True
        # A revised second of a minute already closed comes with that minute's revision.
        if candle.open_time - candle.open_time % _MINUTE_MS in self.minutes.members:
            return False
        return self.seconds.put(candle)

    def acc(self) -> _Acc:
        total = _Acc()
        total.merge(self.minutes.acc())
        total.merge(self.seconds.acc())
        return total


class FormingCandle:
    """The forming candle of one symbol and interval, fed closed 1s and 1m candles.

    Each candle that changes the bar yields the bar (`closed=False`; a flat second changes
    nothing); the member that ends the interval (or any candle of a later interval)
    closes it (`closed=True`). The previous bar is kept, so a late revision of it is sent
    again, closed, with a higher `version`. The 1s interval has no forming state: each
    1s candle is its own close (a revision of the latest second is sent again, with the
    candle's own version; older seconds are history).

    Args:
        exchange: The symbol's exchange.
        market: Its market.
        symbol: The symbol.
        interval: One of `api.services.candles.INTERVAL_MS`.
    """

    def __init__(self, exchange: str, market: str, symbol: str, interval: str) -> None:
        self.exchange, self.market, self.symbol = exchange, market, symbol
        self.interval = interval
        self.interval_ms = INTERVAL_MS[interval]
        self.current: _Window | None = None
        self.previous: _Window | None = None
        self.latest_1s: Bar | None = None

    def add(self, candle: Candle) -> list[Bar]:
        """Apply one closed candle of this symbol.

        Args:
            candle: A 1s or 1m candle (either may be a revision, with a higher version).

        Returns:
            The bars to send, oldest first (none when the candle changed nothing).
        """
        if self.interval == "1s":
            return self._add_second(candle)
        start = candle.open_time - candle.open_time % self.interval_ms
        out: list[Bar] = []
        current = self.current
        if current is None or start > current.open_time:
            if current is not None and not current.closed:
                out.append(self._close(current))  # its last member never came
            self.previous, current = current, _Window(start)
            self.current = current
        elif start < current.open_time:
            previous = self.previous
            if previous is not None and previous.open_time == start and previous.put(candle):
                out.extend(self._reclose(previous))
            return out
        if not current.put(candle):
            return out
        if current.closed:
            out.extend(self._reclose(current))
        elif candle.close_time >= current.open_time + self.interval_ms - 1:
            out.append(self._close(current))
        else:
            bar = self._bar(current)
            if bar != current.last:  # a quiet second, or seconds replaced by their minute
                current.last = bar
                out.append(bar)
        return out

    def bar(self) -> Bar | None:
        """The current bar (forming, or closed until the next interval starts), if any."""
        if self.interval == "1s":
            return self.latest_1s
        return None if self.current is None else self._bar(self.current)

    def _add_second(self, candle: Candle) -> list[Bar]:
        if candle.interval != "1s":
            return []
        latest = self.latest_1s
        if latest is not None and candle.open_time < latest.open_time:
            return []
        bar = Bar(
            self.exchange,
            self.market,
            self.symbol,
            "1s",
            candle.open_time,
            candle.close_time,
            candle.open,
            candle.high,
            candle.low,
            candle.close,
            candle.volume,
            candle.quote_volume,
            candle.count,
            candle.taker_buy_volume,
            candle.taker_buy_quote_volume,
            candle.first_trade_id,
            candle.last_trade_id,
            candle.version,
            True,
        )
        if (
            latest is not None
            and latest.open_time == bar.open_time
            and latest.version >= bar.version
        ):
            return []
        self.latest_1s = bar
        return [bar]

    def _close(self, window: _Window) -> Bar:
        window.closed = True
        window.last = self._bar(window)
        return window.last

    def _reclose(self, window: _Window) -> list[Bar]:
        bar = self._bar(window)
        if window.last is not None and _same(bar, window.last):
            return []  # e.g. a minute's 1m candle replacing its identical seconds
        window.version += 1
        window.last = msgspec.structs.replace(bar, version=window.version)
        return [window.last]

    def _bar(self, window: _Window) -> Bar:
        acc = window.acc()
        close = acc.close if acc.close is not None else _ZERO
        # A wholly quiet interval is flat: every price is the close its flat members carry.
        return Bar(
            self.exchange,
            self.market,
            self.symbol,
            self.interval,
            window.open_time,
            window.open_time + self.interval_ms - 1,
            close if acc.open is None else acc.open,
            close if acc.high is None else acc.high,
            close if acc.low is None else acc.low,
            close,
            acc.volume,
            acc.quote_volume,
            acc.count,
            acc.taker_buy_volume,
            acc.taker_buy_quote_volume,
            acc.first_id,
            acc.last_id,
            window.version,
            window.closed,
        )


def _same(a: Bar, b: Bar) -> bool:
    """Equal but for `version`."""
    return msgspec.structs.replace(a, version=b.version) == b
