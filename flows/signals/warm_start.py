"""Warm start of the signals flow: each symbol's candle history read back from ClickHouse.

The broker may have lost every candle (the embedded one keeps them in memory only) or may
still hold some of them (a real Kafka within its retention); ClickHouse holds them all. So
a signals flow that starts without a recovery snapshot first fills each symbol's rings
from `candles_1s` (the last `SECONDS_KEPT` seconds) and `candles_1m` (the last
`MINUTES_KEPT` minutes) read with FINAL (each candle's highest version), then applies the
live topic on top. A candle both loaded and read from the topic again is a repeat (same
key and version) and is ignored; a higher version revises it by difference; so no candle
counts twice at the seam, whichever of the two holds it. Given the rules' parameters, the
same 1m candles (with their opens) also fill each symbol's signal bars, without firing
(`flows.signals.warm_bars`). Perpetuals' marks, funding, open interest and liquidations
come back the same way (`flows.signals.warm_perps`).

Reading is columnar (Arrow), one query per interval (splitting it by symbol took twice
as long: each part scans the table again), and the rings are written with numpy
(`CandleHistory.load`): `bench/warm_start.py` measures 2,000 symbols x (24 h of 1m +
1 h of 1s). The columns read (about 64 bytes a candle, 650 MB for those 2,000 symbols)
are held only while the rings are filled.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa

from flows.signals.bars import SymbolBars
from flows.signals.columns import MINUTE_MS, SECOND_MS, CandleColumns
from flows.signals.history import MINUTES_KEPT, SECONDS_KEPT, CandleHistory
from flows.signals.perps import PerpState
from flows.signals.settings import SignalParams
from flows.signals.warm_bars import fill_bars
from flows.signals.warm_perps import read_perps

logger = logging.getLogger(__name__)

_KEYS_SQL = """
SELECT DISTINCT cityHash64(exchange, market, symbol), exchange, market, symbol
FROM {db:Identifier}.{table:Identifier}
WHERE open_time >= fromUnixTimestamp64Milli({since:Int64})
"""

# The symbol travels as a 64-bit hash (a string per row costs more than the rest of the
# row); the keys query maps it back. Ordered by the table's sorting key, so each symbol's
# candles are one run, oldest first.
_CANDLES_SQL = """
SELECT cityHash64(exchange, market, symbol) AS key,
    toUnixTimestamp64Milli(open_time) AS t,
    toFloat64(close) AS close, toFloat64(high) AS high, toFloat64(low) AS low,
    toFloat64(volume) AS volume, toFloat64(quote_volume) AS quote,
    toFloat64(count) AS trades, toInt64(version) AS version{open}
FROM {db:Identifier}.{table:Identifier} FINAL
WHERE open_time >= fromUnixTimestamp64Milli({since:Int64})
ORDER BY exchange, market, symbol, open_time
"""

_SQL = {
    "candles_1s": _CANDLES_SQL.replace("{open}", ""),
    # The signal bars need the minutes' opens too (`flows.signals.warm_bars`); the rings do not.
    "candles_1m": _CANDLES_SQL.replace("{open}", ", toFloat64(open) AS open"),
}


class Warmed(NamedTuple):
    """A symbol's state as loaded from the store."""

    history: CandleHistory
    bars: SymbolBars | None
    """Its signal bars, when the rules' parameters were given (see `flows.signals.warm_bars`)."""


@dataclass(frozen=True)
class LoadReport:
    """What a warm start read."""

    symbols: int
    seconds: int
    """1s candles read."""
    minutes: int
    """1m candles read."""
    elapsed_s: float
    query_s: float
    """Of which in ClickHouse's queries (and the Arrow transfer)."""


def _columns(table: pa.Table) -> Iterator[tuple[int, list[np.ndarray]]]:
    """Split a table ordered by symbol into each symbol's columns, by its key hash."""
    if table.num_rows == 0:
        return
    # One contiguous buffer per column, then zero-copy views: ChunkedArray.to_numpy over
    # chdb's ~900 record batches of a day took 60 times as long (12.7 s against 0.2 s).
    whole = table.combine_chunks()
    keys, *arrays = (column.chunk(0).to_numpy() for column in whole.columns)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(keys)) + 1))
    ends = np.append(starts[1:], len(keys))
    for key, b, e in zip(keys[starts].tolist(), starts.tolist(), ends.tolist(), strict=True):
        yield key, [a[b:e] for a in arrays]


def read_histories(
    client: Any,
    database: str,
    as_of_ms: int,
    *,
    seconds_kept: int = SECONDS_KEPT,
    minutes_kept: int = MINUTES_KEPT,
    params: SignalParams | None = None,
) -> tuple[dict[str, Warmed], LoadReport]:
    """Every symbol's candle history (and signal bars) as of `as_of_ms`, from the candle
    tables.

    Args:
        client: clickhouse-connect client.
        database: Database holding `candles_1s` and `candles_1m`.
        as_of_ms: Now (exchange time): 1s candles from `seconds_kept` seconds before it and
            1m candles from `minutes_kept` minutes before it are read.
        seconds_kept: Length of the seconds rings.
        minutes_kept: Length of the minutes rings.

    Returns:
        A loaded history per symbol key (`exchange:market:symbol`), and what was read.
    """
    started = time.perf_counter()
    since = {
        "candles_1s": as_of_ms - seconds_kept * SECOND_MS,
        "candles_1m": as_of_ms - minutes_kept * MINUTE_MS,
    }
    names: dict[int, str] = {}
    for table, t in since.items():
        rows = client.query(
            _KEYS_SQL, parameters={"db": database, "table": table, "since": t}
        ).result_rows
        names.update((h, f"{exchange}:{market}:{symbol}") for h, exchange, market, symbol in rows)
    histories: dict[str, Warmed] = {}
    counts: dict[str, int] = {}
    read: dict[str, dict[int, list[np.ndarray]]] = {}
    query_s = time.perf_counter() - started
    for table, t in since.items():
        asked = time.perf_counter()
        arrow = client.query_arrow(
            _SQL[table], parameters={"db": database, "table": table, "since": t}
        )
        query_s += time.perf_counter() - asked
        counts[table] = arrow.num_rows
        read[table] = dict(_columns(arrow))
        del arrow
    seconds, minutes = read.pop("candles_1s"), read.pop("candles_1m")
    for h in seconds.keys() | minutes.keys():
        # A symbol whose first candle came after the keys query is left to the topic.
        if h not in names:
            continue
        second_columns = seconds.pop(h, None)
        minute_columns = minutes.pop(h, None)
        in_minutes = None if minute_columns is None else CandleColumns(*minute_columns[:8])
        history = CandleHistory(seconds_kept, minutes_kept)
        history.load(None if second_columns is None else CandleColumns(*second_columns), in_minutes)
        bars = None
        if params is not None:
            exchange, market, symbol = names[h].split(":", 2)
            bars = SymbolBars(exchange, market, symbol, params)
            if minute_columns is not None:
                assert in_minutes is not None
                fill_bars(bars, in_minutes, minute_columns[8])
        histories[names[h]] = Warmed(history, bars)
    report = LoadReport(
        len(histories),
        counts["candles_1s"],
        counts["candles_1m"],
        time.perf_counter() - started,
        query_s,
    )
    return histories, report


class WarmStart:
    """The histories a signals flow starts from, read once (on first need) and handed out
    symbol by symbol as their first live message arrives.

    Args:
        client: Returns the ClickHouse client to read with.
        database: Database holding the candle tables.
        as_of_ms: Returns now in exchange time (wall clock by default).
    """

    def __init__(
        self,
        client: Callable[[], Any],
        database: str,
        as_of_ms: Callable[[], int] | None = None,
    ) -> None:
        self._client = client
        self._database = database
        self._as_of_ms = as_of_ms or (lambda: time.time_ns() // 1_000_000)
        self._lock = threading.Lock()
        self._histories: dict[str, Warmed] | None = None
        self._perps: dict[str, PerpState] = {}
        self.report: LoadReport | None = None

    def load(self, params: SignalParams | None = None) -> None:
        """Read the histories, unless done already (thread-safe).

        Args:
            params: The signal rules' parameters: given, each symbol's signal bars are
                filled too.
        """
        with self._lock:
            if self._histories is not None:
                return
            as_of = self._as_of_ms()
            client = self._client()
            self._histories, self.report = read_histories(
                client, self._database, as_of, params=params
            )
            self._perps = read_perps(client, self._database, as_of)
            logger.info(
                "warm start: %d symbols, %d 1s and %d 1m candles read in %.1f s (%.1f s of it"
                " in ClickHouse)",
                self.report.symbols,
                self.report.seconds,
                self.report.minutes,
                self.report.elapsed_s,
                self.report.query_s,
            )
            logger.info("warm start: perpetuals data of %d symbols read", len(self._perps))

    def take(self, key: str, params: SignalParams | None = None) -> Warmed | None:
        """The loaded history and bars of a symbol (once: they then belong to the caller).

        Args:
            key: The symbol's key, `exchange:market:symbol`.
            params: As for `load`, should this call be the one that reads.
        """
        self.load(params)
        assert self._histories is not None
        with self._lock:
            return self._histories.pop(key, None)

    def take_perps(self, key: str, params: SignalParams | None = None) -> PerpState | None:
        """The loaded perpetuals state of a symbol (once, as `take`)."""
        self.load(params)
        with self._lock:
            return self._perps.pop(key, None)
