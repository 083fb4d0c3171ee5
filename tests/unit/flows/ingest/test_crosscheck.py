"""Cross-check of our 1m candles against the exchange's closed klines."""

from __future__ import annotations

import csv
from decimal import Decimal

import msgspec
import pytest

from flows.candles.engine import PartitionCandles
from flows.ingest.crosscheck import CrossChecker, ExchangeKline, decode_closed_kline
from flows.ingest.mismatch import NO_CANDLE
from flows.sources.files import read_trades
from schemas.candles import Candle
from schemas.trades import Trade
from tests.shared_data import SHARED_DATA

DATA = SHARED_DATA
SAMPLES = DATA / "ws-samples" / "cryptofeed_BINANCE_FUTURES.ws.1.0"
DAY = DATA / "binance-um-btcusdt-20240808"
CAPTURE = DAY / "hftbacktest_usdm_btcusdt_20240808.gz"
KLINES = DAY / "BTCUSDT-1m-2024-08_um_klines_2024-08-08T2350_2024-08-09T0010.csv"
COVERED = range(1_723_161_300_000, 1_723_161_600_000, 60_000)


def official() -> dict[int, ExchangeKline]:
    with KLINES.open() as f:
        rows = list(csv.DictReader(f))
    return {
        int(r["open_time"]): ExchangeKline(
            "BTCUSDT",
            "1m",
            int(r["open_time"]),
            tuple(
                int(r[k]) if k == "count" else Decimal(r[k])
                for k in (
                    "open",
                    "high",
                    "low",
                    "close",
                    "volume",
                    "quote_volume",
                    "count",
                    "taker_buy_volume",
                    "taker_buy_quote_volume",
                )
            ),
        )
        for r in rows
    }


@pytest.fixture(scope="module")
def our_minutes() -> dict[int, Candle]:
    engine = PartitionCandles()
    out: list[Candle] = []
    for t in read_trades(CAPTURE, market="usdm"):
        if isinstance(t, Trade):
            engine.add(t.key, t, out)
    engine.flush(out)
    return {c.open_time: c for c in out if c.interval == "1m"}


def test_real_kline_messages_decode_and_open_ones_are_ignored() -> None:
    lines = [
        line.split(": ", 1)[1]
        for line in SAMPLES.read_text().splitlines()[1:]
        if "@kline_1m" in line
    ]
    decoded = [decode_closed_kline(line) for line in lines]
    closed = [k for k in decoded if k is not None]
    assert len(lines) == 67 and 0 < len(closed) < len(lines)
    k = closed[0]
    assert k.interval == "1m" and k.open_time % 60_000 == 0
    assert isinstance(k.values[0], Decimal) and isinstance(k.values[6], int)


def test_candles_from_the_capture_pass_the_check_against_the_official_klines(
    our_minutes: dict[int, Candle],
) -> None:
    checker = CrossChecker("binance", "usdm", settle_ms=1_000)
    for candle in our_minutes.values():
        checker.add_candle(candle)
    for minute in COVERED:
        checker.add_kline(official()[minute], now_ms=0)
    assert checker.due(now_ms=500) == []  # not settled yet: nothing judged
    assert checker.due(now_ms=1_000) == []
    assert (checker.checked, checker.mismatched) == (5, 0)


def test_a_wrong_candle_is_reported_field_by_field(our_minutes: dict[int, Candle]) -> None:
    checker = CrossChecker("binance", "usdm", settle_ms=0)
    minute = COVERED[0]
    ours = our_minutes[minute]

    wrong = msgspec.structs.replace(ours, count=ours.count - 1, volume=ours.volume - 1, version=2)
    checker.add_candle(ours)
    checker.add_candle(wrong)  # the highest version is the candle
    checker.add_kline(official()[minute], now_ms=0)
    checker.add_kline(official()[minute + 60_000], now_ms=0)  # ours never came
    found = checker.due(now_ms=0)
    assert [(m.open_time, m.missing_ours) for m in found] == [
        (minute, False),
        (minute + 60_000, True),
    ]
    assert [f.split(":")[0] for f in found[0].fields] == ["volume", "count"]
    assert checker.mismatched == 2
    # What the data-quality row and the log line say of each.
    assert found[0].detail == (
        f"volume: {ours.volume - 1} != {ours.volume}; count: {ours.count - 1} != {ours.count}"
    )
    assert found[1].detail == NO_CANDLE == "no candle from tickscan"


def test_pending_minutes_are_bounded() -> None:
    checker = CrossChecker("binance", "usdm", settle_ms=10**9, max_pending=10)
    for i in range(50):
        checker.add_kline(ExchangeKline("X", "1m", i * 60_000, (0,) * 9), now_ms=0)
    judged = checker.due(now_ms=1)
    assert len(judged) == 40 and checker.checked == 40


def kline_at(open_time: int, first_trade_id: int | None, symbol: str = "BTCUSDT") -> ExchangeKline:
    values = (Decimal(1),) * 6 + (0 if first_trade_id is None else 1,) + (Decimal(0),) * 2
    return ExchangeKline(symbol, "1m", open_time, values, first_trade_id)


def test_only_minutes_followed_from_their_first_trade_are_judged() -> None:
    checker = CrossChecker("binance", "usdm", settle_ms=0, followed={})
    checker.add_kline(kline_at(0, 100), now_ms=0)  # nothing followed yet
    checker.follow("BTCUSDT", 150, time_ms=61_000)
    checker.follow("BTCUSDT", 140, time_ms=60_500)  # only the first trade counts
    checker.add_kline(kline_at(60_000, 120), now_ms=0)  # began before our first trade
    checker.add_kline(kline_at(120_000, 150), now_ms=0)  # began with it: whole
    checker.add_kline(kline_at(180_000, None), now_ms=0)  # no trade, after it: whole
    checker.add_kline(kline_at(0, None, "ETHUSDT"), now_ms=0)
    found = checker.due(now_ms=0)
    assert [(m.open_time, m.missing_ours) for m in found] == [(120_000, True), (180_000, True)]
    counts = checker.counts(recorded=2)
    assert (counts.klines, counts.unfollowed, counts.checked, counts.missing) == (5, 3, 2, 2)
    assert counts.recorded == 2 and counts.pending == 0

    checker.forget(["BTCUSDT"])  # delisted: a relisting starts over
    checker.add_kline(kline_at(240_000, 200), now_ms=0)
    assert checker.counts().unfollowed == 4


def test_a_closed_kline_carries_its_first_trade_id() -> None:
    raw = (
        '{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1723161360012,"s":"BTCUSDT",'
        '"k":{"t":1723161300000,"T":1723161359999,"s":"BTCUSDT","i":"1m","f":5266584991,'
        '"L":5266586995,"o":"61807.70","c":"61760.30","h":"61839.90","l":"61760.30",'
        '"v":"136.450","n":2005,"x":true,"q":"8432904.62160","V":"57.185",'
        '"Q":"3534417.70220","B":"0"}}}'
    )
    kline = decode_closed_kline(raw)
    assert kline is not None and kline.first_trade_id == 5266584991
    empty = raw.replace('"n":2005', '"n":0')
    assert decode_closed_kline(empty).first_trade_id is None  # type: ignore[union-attr]
    assert decode_closed_kline(raw.replace('"x":true', '"x":false')) is None
