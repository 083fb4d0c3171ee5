"""The simulated market against a real ClickHouse: a day of history at first start, then resumes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from clickhouse_connect.driver.client import Client

from flows.candles.engine import PartitionCandles
from flows.sinks.clickhouse import CandleWriter
from flows.sources.simulator import SyntheticMarket
from runtime.migrate import migrate
from schemas.candles import Candle
from schemas.trades import Trade
from tickscan.simulate import prepare_market

pytestmark = pytest.mark.integration

SYMBOLS = 10
NOW_MS = 1_795_999_980_000 + 37_250  # 37 s into a minute
END_MS = NOW_MS - NOW_MS % 60_000


@pytest.fixture
def database(ch: Client) -> Iterator[str]:
    """A migrated database of its own: sim candles of other tests must not be resumed."""
    name = f"tickscan_simhist_{uuid.uuid4().hex[:8]}"
    migrate(ch, name)
    yield name
    ch.command("DROP DATABASE IF EXISTS {db:Identifier}", parameters={"db": name})


def scalar(ch: Client, sql: str, database: str) -> int:
    return int(ch.query(sql, parameters={"db": database}).result_rows[0][0])


def id_breaks(ch: Client, database: str, table: str) -> int:
    """Candles with trades whose first id is not the previous one's last id + 1."""
    return scalar(
        ch,
        "SELECT countIf(prev != 0 AND first_trade_id != prev + 1) FROM ("
        " SELECT first_trade_id, lagInFrame(last_trade_id) OVER (PARTITION BY symbol"
        "  ORDER BY open_time ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS prev"
        f" FROM {{db:Identifier}}.{table} FINAL WHERE exchange = 'sim' AND count > 0)",
        database,
    )


def duplicates(ch: Client, database: str) -> int:
    """Candle keys written more than once (a generator must never rewrite a candle)."""
    return sum(
        scalar(ch, f"SELECT count() FROM {{db:Identifier}}.{t}", database)
        - scalar(ch, f"SELECT count() FROM {{db:Identifier}}.{t} FINAL", database)
        for t in ("candles_1m", "candles_1s")
    )


def rollup_mismatches(ch: Client, database: str) -> int:
    """1m candles that differ from the roll-up of their stored 1s candles (flats skipped)."""
    return scalar(
        ch,
        "SELECT count() FROM ("
        " SELECT symbol, open_time, open, high, low, close, volume, quote_volume, count,"
        "  taker_buy_volume, taker_buy_quote_volume, first_trade_id, last_trade_id"
        " FROM {db:Identifier}.candles_1m FINAL WHERE exchange = 'sim' AND count > 0"
        "  AND (symbol, open_time) IN (SELECT symbol, toStartOfMinute(open_time)"
        "   FROM {db:Identifier}.candles_1s WHERE exchange = 'sim')"
        ") AS m LEFT JOIN ("
        " SELECT symbol, toStartOfMinute(open_time) AS minute,"
        "  argMinIf(open, open_time, count > 0) AS o, maxIf(high, count > 0) AS h,"
        "  minIf(low, count > 0) AS l, argMaxIf(close, open_time, count > 0) AS c,"
        "  sum(volume) AS v, sum(quote_volume) AS q, sum(count) AS n,"
        "  sum(taker_buy_volume) AS bv, sum(taker_buy_quote_volume) AS bq,"
        "  min(first_trade_id) AS f, max(last_trade_id) AS last"
        " FROM {db:Identifier}.candles_1s FINAL WHERE exchange = 'sim' GROUP BY symbol, minute"
        ") AS s ON m.symbol = s.symbol AND m.open_time = s.minute"
        " WHERE (m.open, m.high, m.low, m.close, m.volume, m.quote_volume, m.count,"
        "  m.taker_buy_volume, m.taker_buy_quote_volume, m.first_trade_id, m.last_trade_id)"
        "  != (s.o, s.h, s.l, s.c, s.v, s.q, s.n, s.bv, s.bq, s.f, s.last)",
        database,
    )


def live(market: SyntheticMarket, seconds: int) -> tuple[list[Trade], list[Candle]]:
    """`seconds` of the market's event time and the candles the candle engine makes of them."""
    trades = []
    for trade in market.stream():
        if trade.time_us >= market.start_us + seconds * 1_000_000:
            break
        trades.append(trade)
    engine = PartitionCandles()
    candles: list[Candle] = []
    for trade in trades:
        engine.add(trade.key, trade, candles)
    engine.flush(candles)
    return trades, candles


def last_ids(ch: Client, database: str) -> dict[str, int]:
    rows = ch.query(
        "SELECT symbol, max(last_trade_id) FROM {db:Identifier}.candles_1s"
        " WHERE exchange = 'sim' GROUP BY symbol",
        parameters={"db": database},
    ).result_rows
    return {symbol: int(last) for symbol, last in rows}


def test_first_start_writes_a_day_then_restarts_resume_ids_and_prices(
    ch: Client, database: str
) -> None:
    market, report = prepare_market(ch, database, SYMBOLS, 200.0, seed=5, now_ms=NOW_MS)

    # A day of 1m candles and an hour of 1s candles for every symbol, up to the minute.
    assert report.symbols == SYMBOLS
    per_symbol = ch.query(
        "SELECT symbol, count(), toUnixTimestamp64Milli(min(open_time)),"
        " toUnixTimestamp64Milli(max(open_time)) FROM {db:Identifier}.candles_1m FINAL"
        " WHERE exchange = 'sim' GROUP BY symbol",
        parameters={"db": database},
    ).result_rows
    assert len(per_symbol) == SYMBOLS
    assert all(row[1:] == (1_445, END_MS - 86_700_000, END_MS - 60_000) for row in per_symbol)
    seconds = "SELECT count() FROM {db:Identifier}.candles_1s FINAL WHERE exchange = 'sim'"
    assert scalar(ch, seconds, database) == SYMBOLS * 3_600
    assert rollup_mismatches(ch, database) == 0
    assert id_breaks(ch, database, "candles_1m") == 0
    assert id_breaks(ch, database, "candles_1s") == 0
    sources = "SELECT groupUniqArray((source, version)) FROM {db:Identifier}.candles_1m"
    assert ch.query(sources, parameters={"db": database}).result_rows[0][0] == [("trades", 1)]

    # The live market picks up at the minute, straight after the history's ids and prices.
    assert market.start_us == END_MS * 1000
    stored_ids = last_ids(ch, database)
    stored_close: dict[str, Decimal] = {
        symbol: close
        for symbol, close in ch.query(
            "SELECT symbol, argMax(close, open_time) FROM {db:Identifier}.candles_1s FINAL"
            " WHERE exchange = 'sim' GROUP BY symbol",
            parameters={"db": database},
        ).result_rows
    }
    trades, candles = live(market, 90)
    first: dict[str, Trade] = {}
    for trade in trades:
        first.setdefault(trade.symbol, trade)
    assert len(first) == SYMBOLS
    for symbol, trade in first.items():
        assert trade.trade_id == stored_ids[symbol] + 1
        assert abs(float(trade.price / stored_close[symbol]) - 1) < 0.02
    writer = CandleWriter(lambda: ch, database)
    writer.add(candles)
    writer.flush()
    assert id_breaks(ch, database, "candles_1s") == 0

    # A restart five minutes later continues the gap from the live candles' last minute,
    # without writing the day again, and resumes after every stored id.
    later_ms = NOW_MS + 5 * 60_000
    resumed, again = prepare_market(ch, database, SYMBOLS, 200.0, seed=5, now_ms=later_ms)
    assert again.symbols == SYMBOLS
    assert 0 < again.candles_1m <= SYMBOLS * 5
    assert duplicates(ch, database) == 0
    assert id_breaks(ch, database, "candles_1m") == 0
    assert id_breaks(ch, database, "candles_1s") == 0
    assert rollup_mismatches(ch, database) == 0
    stored_ids = last_ids(ch, database)
    assert resumed.next_trade_ids() == {s: i + 1 for s, i in stored_ids.items()}

    # And a restart within the same minute writes nothing: each symbol resumes where its
    # candles end, after raw trades stored ahead of their candles too.
    ahead = next(iter(stored_ids))
    ch.command(
        "INSERT INTO {db:Identifier}.trades (exchange, market, symbol, trade_id, price, qty,"
        " quote_qty, time, buyer_is_maker) VALUES ('sim', 'spot', {symbol:String}, {id:Int64},"
        " 1, 1, 1, fromUnixTimestamp64Milli({time:Int64}), false)",
        parameters={
            "db": database,
            "symbol": ahead,
            "id": stored_ids[ahead] + 50,
            "time": later_ms,
        },
    )
    again_ids, none = prepare_market(ch, database, SYMBOLS, 200.0, seed=5, now_ms=later_ms + 10_000)
    assert none.symbols == 0 and none.candles_1m == none.candles_1s == 0
    assert duplicates(ch, database) == 0
    assert again_ids.next_trade_ids() == {
        s: i + (51 if s == ahead else 1) for s, i in stored_ids.items()
    }


def test_a_restart_inside_a_minute_resumes_at_its_last_second_not_at_the_minute_end(
    ch: Client, database: str
) -> None:
    market, _ = prepare_market(ch, database, SYMBOLS, 200.0, seed=5, now_ms=NOW_MS)
    # 20 s of live trading, then a clean stop: the flow writes the forming minute's 1m
    # candle, which ends with the minute, beside 1s candles that end 20 s into it.
    _, candles = live(market, 20)
    assert any(c.interval == "1m" and c.open_time == END_MS for c in candles)
    writer = CandleWriter(lambda: ch, database)
    writer.add(candles)
    writer.flush()
    seconds_end_us = (max(c.close_time for c in candles if c.interval == "1s") + 1) * 1000

    resumed, written = prepare_market(ch, database, SYMBOLS, 200.0, seed=5, now_ms=END_MS + 25_000)
    assert written.symbols == 0
    # The market trades again from where its seconds end, not 40 s later at the minute's end.
    first = next(iter(resumed.stream()))
    assert seconds_end_us - 1_000_000 <= first.time_us < seconds_end_us + 5_000_000
