"""Forming candles of any interval (1s … 1d), built live from the closed 1s and 1m candles.

The roll-up rules are those of every longer bar (`schemas.bars.BarBuilder`): flat members
carry a close but never an open, high or low, members fold in any order, sums are exact.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from schemas.bars import BarBuilder
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


class _Part:
    """Member candles of one interval (1s or 1m) by open time, latest version each, with
    their aggregate cached: a new member folds in, a revised or removed one recomputes."""

    __slots__ = ("_acc", "members", "open_time")

    def __init__(self, open_time: int) -> None:
        self.open_time = open_time
        self.members: dict[int, Candle] = {}
        self._acc: BarBuilder | None = BarBuilder(open_time)

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

    def acc(self) -> BarBuilder:
        if self._acc is None:
            self._acc = BarBuilder(self.open_time)
            for candle in self.members.values():
                self._acc.add(candle)
        return self._acc


class _Window:
    """One interval's members: closed 1m candles, and the 1s candles of minutes that
    have no 1m candle yet (the forming minute). A minute's own candle replaces its seconds."""

    __slots__ = ("closed", "last", "minutes", "open_time", "seconds", "version")

    def __init__(self, open_time: int) -> None:
        self.open_time = open_time
        self.minutes = _Part(open_time)
        self.seconds = _Part(open_time)
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

    def acc(self) -> BarBuilder:
        total = BarBuilder(self.open_time)
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
        close = acc.last_close
        if close is None:
            close = _ZERO
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
            acc.first_trade_id,
            acc.last_trade_id,
            window.version,
            window.closed,
        )


def _same(a: Bar, b: Bar) -> bool:
    """Equal but for `version`."""
    return msgspec.structs.replace(a, version=b.version) == b
