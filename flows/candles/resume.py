"""The candle flow resumed from ClickHouse: each symbol's engine state rebuilt from its
stored candles, and the stored trades its open windows had.

The rebuilding is pure (`resumed_symbol`, `resumed_symbols`); `StoreResume` reads the
store once and hands each partition of the trade topic its own symbols.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flows.candles.symbol_state import CandleAcc, Series, SymbolCandles
from schemas import topics
from schemas.candles import INTERVAL_MS, Candle, Interval
from schemas.trades import Trade

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredSeries:
    """What the store holds of one symbol's candles of one interval, from a minute on.

    Attributes:
        first: Open time of its oldest candle in that span.
        last: Its newest candle (the series was emitted up to its end).
        kept: Its real candles and those revised (version above 1), in any order; the
            flats at version 1 need not be given.
    """

    first: int
    last: Candle
    kept: list[Candle]


def resumed_symbol(
    seconds: StoredSeries, minutes: StoredSeries | None, kept_from: int
) -> SymbolCandles:
    """A symbol's state rebuilt from its stored candles, as the engine had it when it stopped.

    The emitted series go on where the store ends, with the stored last closes (so the
    flats after them carry the right close); the stored real 1s candles are the revision
    history, so a minute still open rolls up its stored seconds with the ones to come;
    stored versions are kept, so every later revision is written above them.

    Args:
        seconds: Its stored 1s candles from `kept_from` on.
        minutes: Its stored 1m candles from `kept_from` on, None if there are none.
        kept_from: Start of the stored span (a minute boundary): trades before it can no
            longer revise a candle.

    Returns:
        The symbol's state, for `PartitionCandles.resume`.
    """
    last = seconds.last
    state = SymbolCandles(last.exchange, last.market, last.symbol)
    state.kept_from = kept_from
    spans: list[tuple[int, int]] = []
    for candle in seconds.kept:
        if candle.count > 0:
            state.history[candle.open_time] = CandleAcc.from_candle(candle)
            spans.extend(_folded_ids(candle))
    # The trades the stored candles count must not be counted again when delivered again.
    state.ids.mark(spans)
    _resume_series(state.s1, seconds)
    if minutes is not None:
        _resume_series(state.m1, minutes)
    return state


def _folded_ids(candle: Candle) -> list[tuple[int, int]]:
    """The raw trade ids a stored real candle is known to have folded: all of its span
    when its count fills it, else only its first and last (the holes may yet be filled)."""
    first, last = candle.first_trade_id, candle.last_trade_id
    if first is None or last is None:
        return []
    if candle.count == last - first + 1:
        return [(first, last)]
    return [(first, first), (last, last)]


def _resume_series(series: Series, stored: StoredSeries) -> None:
    series.first = stored.first
    series.upto = stored.last.open_time + series.interval_ms
    series.last_close = stored.last.close
    series.versions = {c.open_time: c.version for c in stored.kept if c.version > 1}


def partition_of(key: bytes, partitions: int) -> int:
    """The partition a keyed record goes to: librdkafka's default partitioner.

    `consistent_random`: CRC-32 of the key modulo the partition count, which every
    producer of this project uses (none sets another partitioner or a partition).
    """
    return zlib.crc32(key) % partitions


# Per symbol and interval, from the start of the revision horizon before the newest
# stored second: the candles the engine needs (real or revised, and the newest one) with
# the series' first open time. One query for every symbol; rows of our own flow only
# (`source = 'trades'`), since backfilled klines are no state of it.
_VALUES = Candle.__struct_fields__[Candle.__struct_fields__.index("open") :]
"""A candle's columns after its identity and times (open .. version), in `Candle` order."""
_FIRST_MS = 5 + len(_VALUES)  # where `_RESUME_QUERY`'s rows go on after them

_RESUME_QUERY = f"""
WITH (SELECT max(open_time) FROM {{db:Identifier}}.candles_1s WHERE source = 'trades') AS newest,
     toDateTime64(toStartOfMinute(newest - toIntervalMillisecond({{horizon:Int64}})), 3) AS since
SELECT interval, exchange, market, symbol, toUnixTimestamp64Milli(open_time) AS open_ms,
       {", ".join(_VALUES)},
       toUnixTimestamp64Milli(first_open) AS first_ms, toUnixTimestamp64Milli(since) AS since_ms
FROM (
    SELECT '1s' AS interval, *,
           min(open_time) OVER symbol AS first_open, max(open_time) OVER symbol AS last_open
    FROM {{db:Identifier}}.candles_1s FINAL
    WHERE open_time >= since AND source = 'trades'
    WINDOW symbol AS (PARTITION BY exchange, market, symbol)
    UNION ALL
    SELECT '1m' AS interval, *,
           min(open_time) OVER symbol AS first_open, max(open_time) OVER symbol AS last_open
    FROM {{db:Identifier}}.candles_1m FINAL
    WHERE open_time >= since AND source = 'trades'
    WINDOW symbol AS (PARTITION BY exchange, market, symbol)
)
WHERE count > 0 OR version > 1 OR open_time = last_open
ORDER BY interval, exchange, market, symbol, open_time
"""


# The trades the trade store kept from where the stored candles end: their windows were
# still open when the flow stopped, and a broker that keeps messages in memory only has
# lost them.
_TRADES_QUERY = """
SELECT exchange, market, symbol, trade_id, price, qty, toUnixTimestamp64Micro(time) AS time_us,
       buyer_is_maker, first_trade_id, last_trade_id
FROM {db:Identifier}.trades FINAL
WHERE time >= fromUnixTimestamp64Milli({since:Int64})
ORDER BY time, trade_id
"""


@dataclass(frozen=True, slots=True)
class PartitionResume:
    """What one partition takes from the store: its symbols' state and the trades after it.

    Attributes:
        symbols: By Kafka key, each symbol's state (see `resumed_symbols`).
        trades: By Kafka key, stored trades of windows the stored candles do not hold yet,
            in time order: they go into the engine before any new record.
    """

    symbols: dict[object, SymbolCandles] = field(default_factory=dict)
    trades: list[tuple[bytes, Trade]] = field(default_factory=list)


def resumed_symbols(rows: Iterable[tuple[Any, ...]]) -> dict[bytes, SymbolCandles]:
    """Symbols' engine state from the rows of `_RESUME_QUERY` (pure: no I/O).

    Args:
        rows: `(interval, exchange, market, symbol, open_ms, open, high, low, close,
            volume, quote_volume, count, taker_buy_volume, taker_buy_quote_volume,
            first_trade_id, last_trade_id, version, first_ms, since_ms)`, ordered by
            interval, symbol and open time.

    Returns:
        By Kafka key (`exchange:market:symbol`, bytes as the records carry it), the state
        of every symbol with stored 1s candles in the span.
    """
    series: dict[tuple[str, str], list[Candle]] = {}
    firsts: dict[tuple[str, str], int] = {}
    since: int | None = None
    for row in rows:
        interval: Interval = row[0]
        candle = Candle(
            row[1],
            row[2],
            row[3],
            interval,
            row[4],
            row[4] + INTERVAL_MS[interval] - 1,
            *row[5:_FIRST_MS],
        )
        which = (interval, candle.key)
        series.setdefault(which, []).append(candle)
        firsts[which] = row[_FIRST_MS]
        since = row[_FIRST_MS + 1]
    out: dict[bytes, SymbolCandles] = {}
    if since is None:
        return out
    for (kind, symbol_key), candles in series.items():
        if kind != "1s":
            continue
        minutes = series.get(("1m", symbol_key))
        out[symbol_key.encode()] = resumed_symbol(
            StoredSeries(firsts[("1s", symbol_key)], candles[-1], candles),
            None
            if minutes is None
            else StoredSeries(firsts[("1m", symbol_key)], minutes[-1], minutes),
            since,
        )
    return out


class StoreResume:
    """The candle flow's state as ClickHouse holds it, loaded once and shared by partitions.

    Each symbol takes the raw trade ids of its stored 1s candles within the revision
    horizon, so a trade they count that is delivered again (an ingest that restarted too)
    is dropped as a duplicate, not counted twice; one older than the horizon is
    dead-lettered as too late. So use it where the trade source starts about where the
    stored candles end (reading from the topic's end, or an embedded broker whose topics
    start empty), not at the beginning of a long topic.

    Args:
        clickhouse: Returns the ClickHouse client to read with.
        database: Database holding candles_1s and candles_1m.
        horizon_ms: The revision horizon: how much history is read back.
        partitions: Returns the trade topic's partition count (to tell which partition's
            state a symbol is).
    """

    def __init__(
        self,
        clickhouse: Callable[[], Any],
        database: str,
        horizon_ms: int,
        partitions: Callable[[], int],
    ) -> None:
        self._clickhouse = clickhouse
        self._database = database
        self._horizon_ms = horizon_ms
        self._partitions = partitions
        self._lock = threading.Lock()
        self._by_partition: dict[int, PartitionResume] | None = None

    def take(self, partition: int) -> PartitionResume:
        """What one partition resumes from (each partition takes its own once)."""
        with self._lock:
            if self._by_partition is None:
                self._by_partition = self._load()
            return self._by_partition.pop(partition, PartitionResume())

    def _load(self) -> dict[int, PartitionResume]:
        started = time.monotonic()
        client = self._clickhouse()
        result = client.query(
            _RESUME_QUERY, parameters={"db": self._database, "horizon": self._horizon_ms}
        )
        symbols = resumed_symbols(result.result_rows)
        count = self._partitions()
        by_partition: dict[int, PartitionResume] = {}
        for key, state in symbols.items():
            by_partition.setdefault(partition_of(key, count), PartitionResume()).symbols[key] = (
                state
            )
        trades = 0
        if symbols:
            ends = {key: state.s1.upto for key, state in symbols.items()}
            since = min(end for end in ends.values() if end is not None)
            rows = client.query(
                _TRADES_QUERY, parameters={"db": self._database, "since": since}
            ).result_rows
            for row in rows:
                trade = Trade(*row)
                key = topics.symbol_key(trade.exchange, trade.market, trade.symbol).encode()
                end = ends.get(key)
                # A symbol with no stored candles from `since` on has none of its trades counted.
                if end is None or trade.time_us // 1000 >= end:
                    part = by_partition.setdefault(partition_of(key, count), PartitionResume())
                    part.trades.append((key, trade))
                    trades += 1
        logger.info(
            "candle flow resumes %d symbols and %d trades after them from ClickHouse "
            "(%d candle rows, %.2f s)",
            len(symbols),
            trades,
            len(result.result_rows),
            time.monotonic() - started,
        )
        return by_partition
