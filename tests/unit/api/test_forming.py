"""Forming candles of the live candle stream, built from closed 1s and 1m candles."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from api.live.candles import Bar, FormingCandle, encode_bar
from schemas.candles import Candle

M0 = 1_723_161_300_000  # 2024-08-08 23:55:00 UTC, a whole 5 minutes
S = 1_000
M = 60_000


def sec(
    t: int,
    o: str,
    h: str | None = None,
    low: str | None = None,
    c: str | None = None,
    v: str = "1",
    count: int = 1,
    version: int = 1,
    interval: str = "1s",
    first_id: int | None = None,
) -> Candle:
    """A candle; `count=0` makes a flat one at `o` (no volume, no trade ids)."""
    length = S if interval == "1s" else M
    h, low, c = h or o, low or o, c or o
    flat = count == 0
    price = Decimal(c)
    volume = Decimal(0) if flat else Decimal(v)
    first = None if flat else (first_id if first_id is not None else t // S)
    return Candle(
        "binance",
        "spot",
        "BTCUSDT",
        interval,  # type: ignore[arg-type]
        t,
        t + length - 1,
        Decimal(o),
        Decimal(h),
        Decimal(low),
        price,
        volume,
        volume * price,
        count,
        volume / 2,
        volume * price / 2,
        first,
        None if flat else first + count - 1,  # type: ignore[operator]
        version,
    )


def flat(t: int, close: str, interval: str = "1s") -> Candle:
    return sec(t, close, count=0, interval=interval)


def minute_of(seconds: list[Candle]) -> Candle:
    """The 1m candle the candle flow makes of these (non-flat) seconds."""
    first = seconds[0]
    return Candle(
        first.exchange,
        first.market,
        first.symbol,
        "1m",
        first.open_time - first.open_time % M,
        first.open_time - first.open_time % M + M - 1,
        first.open,
        max(c.high for c in seconds),
        min(c.low for c in seconds),
        seconds[-1].close,
        sum((c.volume for c in seconds), Decimal(0)),
        sum((c.quote_volume for c in seconds), Decimal(0)),
        sum(c.count for c in seconds),
        sum((c.taker_buy_volume for c in seconds), Decimal(0)),
        sum((c.taker_buy_quote_volume for c in seconds), Decimal(0)),
        first.first_trade_id,
        seconds[-1].last_trade_id,
        1,
    )


def forming(interval: str = "1m") -> FormingCandle:
    return FormingCandle("binance", "spot", "BTCUSDT", interval)


def ohlcv(bar: Bar) -> tuple[str, str, str, str, str, int]:
    return (str(bar.open), str(bar.high), str(bar.low), str(bar.close), str(bar.volume), bar.count)


def test_each_second_updates_the_forming_minute_and_the_last_one_closes_it() -> None:
    f = forming("1m")
    bars = f.add(sec(M0, "100", "101", "99", "100.5", v="2"))
    assert len(bars) == 1 and not bars[0].closed
    assert ohlcv(bars[0]) == ("100", "101", "99", "100.5", "2", 1)
    assert (bars[0].open_time, bars[0].close_time) == (M0, M0 + M - 1)
    bars = f.add(sec(M0 + 30 * S, "102", "103", "102", "102.5", v="0.5"))
    assert ohlcv(bars[0]) == ("100", "103", "99", "102.5", "2.5", 2)
    bars = f.add(sec(M0 + 59 * S, "98", "98", "97", "97.5", v="1"))
    assert len(bars) == 1 and bars[0].closed
    assert ohlcv(bars[0]) == ("100", "103", "97", "97.5", "3.5", 3)
    assert bars[0].quote_volume == Decimal("2") * Decimal("100.5") + Decimal("0.5") * Decimal(
        "102.5"
    ) + Decimal("97.5")
    assert bars[0].first_trade_id == M0 // S and bars[0].last_trade_id == (M0 + 59 * S) // S
    assert f.bar() == bars[0]  # still the current bar until the next interval starts


def test_flat_seconds_never_set_the_open_high_or_low() -> None:
    f = forming("1m")
    f.add(flat(M0, "100"))  # quiet first seconds carry the previous close
    f.add(flat(M0 + S, "100"))
    bar = f.add(sec(M0 + 2 * S, "105", "106", "104", "105"))[0]
    assert ohlcv(bar) == ("105", "106", "104", "105", "1", 1)
    assert f.add(flat(M0 + 3 * S, "105")) == []  # a flat after a trade changes nothing


def test_a_wholly_quiet_interval_is_flat_at_the_carried_close() -> None:
    f = forming("1m")
    for i in range(60):
        bars = f.add(flat(M0 + i * S, "100"))
    assert bars[-1].closed
    assert ohlcv(bars[-1]) == ("100", "100", "100", "100", "0", 0)
    assert bars[-1].first_trade_id is None and bars[-1].last_trade_id is None


def test_a_minutes_candle_replaces_its_seconds_without_counting_them_twice() -> None:
    f = forming("5m")
    seconds = [sec(M0, "100", v="1"), sec(M0 + 59 * S, "101", v="2")]
    for candle in seconds:
        f.add(candle)
    assert f.add(minute_of(seconds)) == []  # the same trades as its seconds: nothing to send
    bar = f.add(sec(M0 + M, "102", v="1"))[0]  # the next minute's first second
    assert ohlcv(bar) == ("100", "102", "100", "102", "4", 3)
    assert bar.open_time == M0 and bar.close_time == M0 + 5 * M - 1


def test_a_longer_interval_adds_minutes_and_the_seconds_of_the_forming_minute() -> None:
    f = forming("5m")
    bars = [f.add(sec(M0 + i * M, str(100 + i), v="1", interval="1m")) for i in range(3)]
    assert [b[0].closed for b in bars] == [False, False, False]
    bar = f.add(sec(M0 + 3 * M + 5 * S, "90", v="0.5"))[0]
    assert ohlcv(bar) == ("100", "102", "90", "90", "3.5", 4)
    bar = f.add(sec(M0 + 4 * M, "95", v="1", interval="1m"))[0]  # its last minute: closed
    assert bar.closed and ohlcv(bar) == ("100", "102", "90", "95", "4.5", 5)


def test_a_revised_second_replaces_the_old_version_and_an_old_version_is_ignored() -> None:
    f = forming("1m")
    f.add(sec(M0, "100", v="1"))
    bar = f.add(sec(M0 + S, "101", v="1"))[0]
    assert bar.volume == Decimal("2")
    bar = f.add(sec(M0 + S, "101", "103", "101", "103", v="1.5", count=2, version=2))[0]
    assert ohlcv(bar) == ("100", "103", "100", "103", "2.5", 3)
    assert f.add(sec(M0 + S, "101", v="1", version=1)) == []  # a stale copy changes nothing


def test_a_late_revision_of_a_closed_bar_sends_it_again_with_a_higher_version() -> None:
    f = forming("1m")
    seconds = [sec(M0, "100", v="1"), sec(M0 + 59 * S, "101", v="1")]
    f.add(seconds[0])
    closed = f.add(seconds[1])[0]
    assert closed.closed and closed.version == 1
    f.add(sec(M0 + M, "102", v="1"))  # the next minute starts
    late = sec(M0 + 30 * S, "99", v="1")  # a late trade in the closed minute
    revised = f.add(late)
    assert len(revised) == 1
    assert revised[0].closed and revised[0].version == 2 and revised[0].open_time == M0
    assert ohlcv(revised[0]) == ("100", "101", "99", "101", "3", 3)
    # the minute's own candle, equal to its seconds, is not news
    assert f.add(minute_of([seconds[0], late, seconds[1]])) == []


def test_a_candle_of_the_next_interval_closes_a_bar_whose_last_member_never_came() -> None:
    f = forming("1m")
    f.add(sec(M0 + 10 * S, "100"))
    bars = f.add(sec(M0 + M + 2 * S, "101"))
    assert [(b.open_time, b.closed) for b in bars] == [(M0, True), (M0 + M, False)]


def test_members_in_any_order_make_the_same_bar() -> None:
    members = [
        flat(M0, "99"),
        sec(M0 + 5 * S, "100", "102", "100", "101"),
        sec(M0 + 9 * S, "103", "104", "98", "99"),
        flat(M0 + 10 * S, "99"),
    ]
    forward, backward = forming("1m"), forming("1m")
    for candle in members:
        forward.add(candle)
    for candle in reversed(members):
        backward.add(candle)
    assert forward.bar() == backward.bar()
    bar = forward.bar()
    assert bar is not None
    assert ohlcv(bar) == ("100", "104", "98", "99", "2", 2)


def test_a_1s_stream_sends_each_second_as_its_close() -> None:
    f = forming("1s")
    assert f.bar() is None
    first = f.add(sec(M0, "100"))
    assert [(b.interval, b.closed, b.version) for b in first] == [("1s", True, 1)]
    assert f.add(sec(M0, "100", interval="1m")) == []  # minutes are not 1s bars
    revised = f.add(sec(M0, "100", "101", "100", "101", count=2, version=2))
    assert revised[0].version == 2 and revised[0].close == Decimal("101")
    f.add(sec(M0 + S, "102"))
    assert f.add(sec(M0, "100", version=3)) == []  # a second before the latest is past
    assert f.bar() is not None and f.bar().open_time == M0 + S  # type: ignore[union-attr]


def test_bars_encode_decimals_as_exact_strings() -> None:
    f = forming("1m")
    bar = f.add(sec(M0, "61234.56", v="0.00012345"))[0]
    data = msgspec.json.decode(encode_bar(bar))
    assert data["open"] == "61234.56" and data["volume"] == "0.00012345"
    assert data["interval"] == "1m" and data["closed"] is False and data["version"] == 1
