"""Warm start of the signals flow: how long reading 2,000 symbols' history from chdb takes.

Creates a chdb store holding, for N symbols (default 2,000), what the rings hold: 24 h
5 min of 1m candles and the last 1 h 1 min of 1s candles (made by ClickHouse itself from
`numbers()`, every candle traded), then times `flows.signals.warm_start.read_histories`, which
is what a signals flow does at start: the FINAL queries (Arrow), splitting by symbol,
filling the rings and the signal bars (default rules: 1m .. 1h). A second pass repeats
the load (warm page cache), and one history is checked against a row computed from it.
With `--dir`, a second run on the same directory measures what a restarted process does:
open the store, read it.

The wall time depends on what else the 2 cores run (the load average is printed); the
process's CPU time (chdb's threads included) says what the load costs.

Last line: {"symbols": N, "seconds": S, "minutes": M, "load_s": L, "load_s_again": L2,
"load_cpu_s": C, "rss_mb": R}
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from flows.signals.history import MINUTES_KEPT, SECONDS_KEPT
from flows.signals.metrics import SymbolMetrics
from flows.signals.settings import SignalParams
from flows.signals.warm_start import read_histories
from runtime.clickhouse import connect
from runtime.migrate import migrate

AS_OF = 1_723_248_000_000  # 2024-08-10 00:00 UTC
DATABASE = "bench"

_FILL = """
INSERT INTO {db:Identifier}.{table:Identifier}
    (exchange, market, symbol, open_time, open, high, low, close, volume, close_time,
     quote_volume, count, taker_buy_volume, taker_buy_quote_volume, first_trade_id,
     last_trade_id, version, source)
SELECT 'binance', 'usdm', concat('S', leftPad(toString(s), 4, '0'), 'USDT'),
    fromUnixTimestamp64Milli(toInt64({start:Int64} + i * {step:Int64})),
    toDecimal64(p, 8), toDecimal64(p * 1.001, 8), toDecimal64(p * 0.999, 8),
    toDecimal64(p, 8), toDecimal64(q, 8),
    fromUnixTimestamp64Milli(toInt64({start:Int64} + i * {step:Int64} + {step:Int64} - 1)),
    toDecimal128(p * q, 16), 3, toDecimal64(q / 2, 8), toDecimal128(p * q / 2, 16),
    i * 3, i * 3 + 2, 1, 'trades'
FROM (
    SELECT intDiv(number, {n:UInt64}) AS s, number % {n:UInt64} AS i,
        10 + s % 97 + (i % 31) / 10 AS p, 1 + (number % 13) / 4 AS q
    FROM numbers({rows:UInt64})
)
"""


def fill(client: object, symbols: int) -> None:
    """Write the synthetic history."""
    minutes = MINUTES_KEPT
    seconds = SECONDS_KEPT
    for table, n, step in (("candles_1m", minutes, 60_000), ("candles_1s", seconds, 1_000)):
        client.command(  # type: ignore[attr-defined]
            _FILL,
            parameters={
                "db": DATABASE,
                "table": table,
                "start": AS_OF - n * step,
                "step": step,
                "n": n,
                "rows": symbols * n,
            },
        )


def rss_mb() -> float:
    """Peak resident set size of this process, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=2_000)
    parser.add_argument(
        "--dir", type=Path, default=None, help="chdb directory, kept (default: a temporary one)"
    )
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="warm-start-bench-"))
    client = connect(f"chdb://{root}")
    try:
        migrate(client, DATABASE)
        seconds, minutes = args.symbols * SECONDS_KEPT, args.symbols * MINUTES_KEPT
        held = client.command(
            "SELECT count() FROM {db:Identifier}.candles_1m", parameters={"db": DATABASE}
        )
        if held == minutes:
            print(f"store: {args.dir} already holds the history (a restarted process)")
        else:
            started = time.perf_counter()
            fill(client, args.symbols)
            print(
                f"store: {args.symbols} symbols, {seconds:,} 1s + {minutes:,} 1m candles"
                f" written in {time.perf_counter() - started:.1f} s"
            )
        cpu = time.process_time()
        histories, report = read_histories(client, DATABASE, AS_OF, params=SignalParams())
        cpu_s = time.process_time() - cpu
        print(
            f"load: {report.symbols} symbols, {report.seconds:,} 1s + {report.minutes:,} 1m"
            f" candles in {report.elapsed_s:.1f} s ({report.query_s:.1f} s in ClickHouse,"
            f" {(report.seconds + report.minutes) / report.elapsed_s:,.0f} candles/s);"
            f" CPU {cpu_s:.1f} s (all threads), load average {os.getloadavg()[0]:.1f}"
        )
        assert report.symbols == args.symbols, report
        assert (report.seconds, report.minutes) == (seconds, minutes), report
        metrics = SymbolMetrics("binance", "usdm", "S0000USDT")
        warmed = histories["binance:usdm:S0000USDT"]
        metrics.history = warmed.history
        assert warmed.bars is not None
        bars = {tf: len(warmed.bars.history(tf) or ()) for tf in ("1m", "5m", "15m", "1h")}
        assert bars == {"1m": 100, "5m": 100, "15m": 96, "1h": 24}, bars
        row = metrics.row()
        assert row.time_ms == AS_OF and row.change_pct_1h is not None, row
        assert row.quote_volume_24h is not None and row.rsi_14 is not None, row
        print(
            f"row of S0000USDT as of the load: quote_volume_24h={row.quote_volume_24h:,.2f}"
            f" change_pct_1h={row.change_pct_1h:.4f} rsi_14={row.rsi_14:.2f}"
        )
        del histories
        cpu = time.process_time()
        again = read_histories(client, DATABASE, AS_OF, params=SignalParams())[1]
        cpu_again_s = time.process_time() - cpu
        print(
            f"load again: {again.elapsed_s:.1f} s ({again.query_s:.1f} s in ClickHouse);"
            f" CPU {cpu_again_s:.1f} s, load average {os.getloadavg()[0]:.1f}"
        )
        peak = rss_mb()
        print(f"peak RSS {peak:,.0f} MB")
    finally:
        client.close()
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)
    print(
        json.dumps(
            {
                "symbols": report.symbols,
                "seconds": report.seconds,
                "minutes": report.minutes,
                "load_s": round(report.elapsed_s, 2),
                "load_s_again": round(again.elapsed_s, 2),
                "load_cpu_s": round(cpu_s, 2),
                "rss_mb": round(peak),
            }
        )
    )


if __name__ == "__main__":
    main()
