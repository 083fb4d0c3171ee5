"""The simulated perpetuals' past: marks, funding, open interest and liquidations, generated
in seconds at first start from the spot candles of their twins.

`PerpHistory.generate` reads the twins' spot candles the store holds (the history
generator has just written them: 1m candles for the day, 1s for the last hour), steps the
perpetuals' model (`flows.sources.simulator.perp_model.PerpModel`) over them from where the
stored perpetuals data ends (or a day back), and hands the records to a writer, e.g.
`flows.sinks.perps.PerpWriter`:

- marks: one per minute, and one per second over the last hour (24 h of 1 Hz marks for
  40 perpetuals is 3.5 M rows, minutes of inserts, for chart panes that show minutes);
- funding events at each funding time passed (the last three for 8 h funding);
- open interest every 5 minutes;
- liquidations in the pumps and dumps, at most one per symbol per second.

Stored marks and open interest, read back by `read_perp_state`, are where the model
continues after a restart, so the series go on without a jump.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from flows.sources.simulator.perp_model import (
    MARKET,
    PRINT_P,
    Draws,
    PerpModel,
    PerpRecord,
    PerpState,
    funding_times_between,
)
from flows.sources.simulator.perps import Perpetuals

logger = logging.getLogger(__name__)

MINUTE_MS = 60_000
OPEN_INTEREST_HISTORY_S = 300
"""Open interest is written every 5 minutes in the generated history."""

_WRITE_BATCH = 50_000
_DRAWS_S = 3_600  # the per-second draws are made an hour at a time


@dataclass(frozen=True, slots=True)
class StoredPerp:
    """Where a perpetual's stored data ends.

    Attributes:
        state: Its last stored mark, index and open interest.
        end_ms: Time of its last stored mark: the model stood there (a mark is stamped
            at the end of the step that made it).
    """

    state: PerpState
    end_ms: int


@dataclass
class PerpHistoryReport:
    """What the perpetuals' history generator wrote.

    Attributes:
        written: Records written by type name (``MarkPrice``, ``FundingEvent``,
            ``OpenInterest``, ``Liquidation``).
        seconds: Wall-clock seconds taken, inserts included.
    """

    written: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def read_perp_state(
    client: Any, database: str, exchange: str, symbols: Sequence[str]
) -> dict[str, StoredPerp]:
    """Each perpetual's last stored mark, index, funding estimate and open interest.

    Args:
        client: A clickhouse-connect client.
        database: Database holding ``marks_1s`` and ``open_interest``.
        exchange: e.g. ``sim``.
        symbols: The perpetuals.

    Returns:
        By symbol, those with a stored mark.
    """
    params = {"db": database, "exchange": exchange, "market": MARKET, "symbols": list(symbols)}
    where = (
        "WHERE exchange = {exchange:String} AND market = {market:String} "
        "AND symbol IN {symbols:Array(String)} GROUP BY symbol"
    )
    marks = client.query(
        "SELECT symbol, toUnixTimestamp64Milli(max(time)), "
        "toString(argMax(index_price, time)), toString(argMax(mark_price, time)), "
        "toString(argMax(funding_rate, time)) FROM {db:Identifier}.marks_1s " + where,
        parameters=params,
    ).result_rows
    oi = dict(
        client.query(
            "SELECT symbol, toString(argMax(open_interest, time)) "
            "FROM {db:Identifier}.open_interest " + where,
            parameters=params,
        ).result_rows
    )
    return {
        symbol: StoredPerp(
            PerpState(
                Decimal(index),
                Decimal(mark),
                Decimal(oi[symbol]) if symbol in oi else None,
                Decimal(rate) if rate is not None else None,
                int(end_ms) // 1000,
            ),
            int(end_ms),
        )
        for symbol, end_ms, index, mark, rate in marks
    }


Write = Callable[[list[PerpRecord]], None]
"""Receives records in batches, e.g. `flows.sinks.perps.PerpWriter.add`."""


class PerpHistory:
    """Generates what the perpetuals would have published before the live market starts.

    Args:
        perps: The live perpetuals, to continue: the history steps their model.
        client: A clickhouse-connect client holding the twins' spot candles.
        database: Its database.
    """

    def __init__(self, perps: Perpetuals, client: Any, database: str) -> None:
        self.perps = perps
        self.model: PerpModel = perps.model
        self.client = client
        self.database = database
        self._draws: Draws | None = None

    def generate(
        self, first_ms: int, seconds_from_ms: int, end_ms: int, write: Write
    ) -> PerpHistoryReport:
        """Write the perpetuals' records from where their stored data ends (at most back to
        `first_ms`) up to `end_ms`; continue the live perpetuals from there.

        Args:
            first_ms: Start of the history when nothing is stored (a whole minute).
            seconds_from_ms: Marks once a second from here on, once a minute before.
            end_ms: End of the history, a whole minute: where the live market starts.
            write: Receives the records.

        Returns:
            What was written.
        """
        started = time.monotonic()
        report = PerpHistoryReport()
        names = self.perps.symbols
        stored = read_perp_state(self.client, self.database, self.perps.exchange, names)
        self.perps.restore({n: s.state for n, s in stored.items()}, {})
        start_ms = first_ms
        if len(stored) == len(names):
            ends = min(s.end_ms for s in stored.values())
            start_ms = max(first_ms, -(-ends // MINUTE_MS) * MINUTE_MS)
        if start_ms >= end_ms:
            report.seconds = time.monotonic() - started
            return report
        logger.info(
            "generating simulated perpetuals history for %d symbols (%d stored)",
            len(names), len(stored),
        )  # fmt: skip
        seconds_from = min(end_ms, max(start_ms, seconds_from_ms))
        minutes = self._spot("candles_1m", start_ms, seconds_from, MINUTE_MS)
        seconds = self._spot("candles_1s", seconds_from, end_ms, 1_000)
        batch: list[PerpRecord] = []
        last_spot = self.model.index.copy()
        for (t0_ms, step_ms), (spot, volume) in _steps(
            (start_ms, MINUTE_MS, minutes), (seconds_from, 1_000, seconds)
        ):
            spot = np.where(np.isnan(spot), last_spot, spot)
            last_spot = spot
            self._step(t0_ms, step_ms, spot, volume, batch)
            if len(batch) >= _WRITE_BATCH:
                self._write(batch, write, report)
                batch = []
        if batch:
            self._write(batch, write, report)
        report.seconds = time.monotonic() - started
        logger.info(
            "simulated perpetuals history written: %s in %.1f s",
            ", ".join(f"{n} {kind}" for kind, n in sorted(report.written.items())),
            report.seconds,
        )  # fmt: skip
        return report

    @staticmethod
    def _write(batch: list[PerpRecord], write: Write, report: PerpHistoryReport) -> None:
        write(batch)
        report.written.update(type(record).__name__ for record in batch)

    def _step(
        self,
        t0_ms: int,
        step_ms: int,
        spot: np.ndarray,
        volume: np.ndarray,
        batch: list[PerpRecord],
    ) -> None:
        """One step of the model over `[t0_ms, t0_ms + step_ms)`, its records into `batch`."""
        model = self.model
        exchange = self.perps.exchange
        t0_s = t0_ms // 1000
        dt = step_ms // 1000
        t_s = t0_s + dt - 1  # the step's last second
        end_us = (t_s + 1) * 1_000_000
        draws = self._draws
        if draws is None or t_s >= draws.start_s + draws.seconds or t0_s < draws.start_s:
            draws = self._draws = model.draws(t0_s, max(dt, _DRAWS_S))
        first = t0_s - draws.start_s
        last = first + dt - 1
        columns = slice(first, last + 1)
        perp = spot * (1.0 + draws.premium[:, last])
        liquidated = model.liquidated_qty(draws, columns)
        model.step(draws, last, float(dt), spot, perp, volume * PRINT_P, liquidated.sum(axis=1))
        hit = draws.hit[:, columns]
        for i, col in zip(*np.nonzero(hit), strict=True):
            batch.append(
                model.liquidation(
                    exchange,
                    int(i),
                    (t0_s + int(col)) * 1_000_000 + int(draws.offset_us[i, first + col]),
                    bool(draws.buy[i, first + col]),
                    float(liquidated[i, col]),
                )
            )
        rates = model.funding_rate()
        batch.extend(model.marks(exchange, end_us, rates))
        if (t_s + 1) % OPEN_INTEREST_HISTORY_S == 0:
            batch.extend(model.open_interests(exchange, end_us))
        for funding_s in funding_times_between(t0_s, t_s + 1, model.funding_every_s):
            batch.extend(model.funding(exchange, funding_s, rates))
            model.settle()

    def _spot(
        self, table: str, from_ms: int, to_ms: int, step_ms: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The twins' spot close and volume per bucket of `[from_ms, to_ms)` (NaN: none)."""
        k = self.model.k
        b = max(0, (to_ms - from_ms) // step_ms)
        close = np.full((k, b), np.nan)
        volume = np.zeros((k, b))
        if b == 0:
            return close, volume
        slot = {name: i for i, name in enumerate(self.perps.symbols)}
        rows = self.client.query(
            "SELECT symbol, toUnixTimestamp64Milli(open_time), toFloat64(argMax(close, version)), "
            "toFloat64(argMax(volume, version)) FROM {db:Identifier}.{table:Identifier} "
            "WHERE exchange = {exchange:String} AND market = 'spot' "
            "AND symbol IN {symbols:Array(String)} "
            "AND open_time >= fromUnixTimestamp64Milli({since:Int64}) "
            "AND open_time < fromUnixTimestamp64Milli({until:Int64}) "
            "GROUP BY symbol, open_time",
            parameters={
                "db": self.database,
                "table": table,
                "exchange": self.perps.exchange,
                "symbols": list(slot),
                "since": from_ms,
                "until": to_ms,
            },
        ).result_rows
        for symbol, open_ms, c, v in rows:
            j = (int(open_ms) - from_ms) // step_ms
            close[slot[symbol], j] = c
            volume[slot[symbol], j] = v
        # An interval without a candle carries the close before it.
        for i in range(k):
            row = close[i]
            valid = ~np.isnan(row)
            if valid.any() and not valid.all():
                idx = np.where(valid, np.arange(b), -1)
                np.maximum.accumulate(idx, out=idx)
                close[i] = np.where(idx >= 0, row[np.maximum(idx, 0)], np.nan)
        return close, volume


def _steps(
    *parts: tuple[int, int, tuple[np.ndarray, np.ndarray]],
) -> list[tuple[tuple[int, int], tuple[np.ndarray, np.ndarray]]]:
    """Each step's (start, length) and its spot columns, parts one after the other."""
    out = []
    for from_ms, step_ms, (close, volume) in parts:
        for j in range(close.shape[1]):
            out.append(((from_ms + j * step_ms, step_ms), (close[:, j], volume[:, j])))
    return out
