"""How long the simulated market's first start takes: a day of candles generated and stored.

`tickscan run --source sim` on an empty store writes the last 24 h of 1m candles and the
last hour of 1s candles before its flows start, for the spot symbols and the perpetuals
(derived from their twins'). This measures that step (generation alone, then generation
with the inserts into a fresh chdb store, as `prepare_market` does it; `--no-perps` for
the spot candles alone), the perpetuals' day (marks, funding, open interest, liquidations, as
`prepare_perpetuals` writes it: a mark a minute and a mark a second over the last hour;
with `--perp-seconds-hours 24`, a mark a second all day, to see what that would cost),
and how fast the live market then generates trades with quotes.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from typing import Any

import pyarrow as pa

from flows.sinks.perps import PerpWriter
from flows.sources.simulator import SyntheticMarket
from flows.sources.simulator.history import HistoryGenerator
from flows.sources.simulator.perp_history import PerpHistory
from flows.sources.simulator.perps import Perpetuals
from runtime.clickhouse import connect
from runtime.migrate import migrate
from tickscan.simulate import BOARD_HISTORY_MS, prepare_market

HOUR_MS = 3_600_000


def generate_only(symbols: int, rate: float, end_ms: int, perps: bool) -> dict[str, float]:
    """Generate and encode the history without storing it."""
    market = SyntheticMarket(symbols, rate, seed=1, start_us=end_ms * 1000)
    twins = Perpetuals(market) if perps else None
    sizes = {"bytes": 0}

    def write(interval: str, table: pa.Table) -> None:
        sizes["bytes"] += table.nbytes

    wall, cpu = time.perf_counter(), time.process_time()
    _, report = HistoryGenerator(market, perps=twins).generate(end_ms, {}, write)
    return {
        "generate_s": time.perf_counter() - wall,
        "generate_cpu_s": time.process_time() - cpu,
        "candles_1m": report.candles_1m,
        "candles_1s": report.candles_1s,
        "perp_candles_1m": report.perp_candles_1m,
        "perp_candles_1s": report.perp_candles_1s,
        "mbytes": sizes["bytes"] / 1e6,
    }


def store_perps(client: Any, market: SyntheticMarket, seconds_hours: int) -> dict[str, float]:
    """The perpetuals' history after the candles', a mark a second over `seconds_hours`."""
    start_ms = market.start_us // 1000
    end_ms = start_ms - start_ms % 60_000
    writer = PerpWriter(lambda: client, "bench", max_rows=1_000_000, max_age_ms=600_000)
    wall, cpu = time.perf_counter(), time.process_time()
    report = PerpHistory(Perpetuals(market), client, "bench").generate(
        end_ms - BOARD_HISTORY_MS, end_ms - seconds_hours * HOUR_MS, end_ms, writer.add
    )
    writer.flush()
    return {
        "perps_store_s": time.perf_counter() - wall,
        "perps_store_cpu_s": time.process_time() - cpu,
        "perp_records": sum(report.written.values()),
        "perp_marks": report.written["MarkPrice"],
    }


def generate_and_store(
    symbols: int, rate: float, now_ms: int, perp_seconds_hours: int, perps: bool
) -> dict[str, float]:
    """What `tickscan run` does at first start: read the (empty) store, generate, insert."""
    with tempfile.TemporaryDirectory(prefix="bench-sim-history-") as path:
        client = connect(f"chdb://{path}")
        try:
            migrate(client, "bench")
            wall, cpu = time.perf_counter(), time.process_time()
            market, _ = prepare_market(
                client, "bench", symbols, rate, seed=1, now_ms=now_ms, perpetuals=perps
            )
            stored = {
                "store_s": time.perf_counter() - wall,
                "store_cpu_s": time.process_time() - cpu,
            }
            stored.update(store_perps(client, market, perp_seconds_hours))
            # A restart: nothing to generate, only the stored ends to read.
            wall = time.perf_counter()
            prepare_market(
                client, "bench", symbols, rate, seed=1, now_ms=now_ms + 1_000, perpetuals=perps
            )
            stored["restart_s"] = time.perf_counter() - wall
        finally:
            client.close()
    return stored


def live_rate(symbols: int, rate: float, trades: int) -> float:
    """Trades (with their quotes) generated per second of wall time by the live market."""
    market = SyntheticMarket(symbols, rate, seed=1, quotes=True)
    start = time.perf_counter()
    last = 0
    for trade in market.trades(trades):
        last = trade.time_us
    market.take_quotes(last)
    return trades / (time.perf_counter() - start)


def main() -> None:
    """Print each figure, then all of them as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--rate", type=float, default=2_000.0, help="trades/s of the market")
    parser.add_argument("--live-trades", type=int, default=200_000)
    parser.add_argument(
        "--perp-seconds-hours", type=int, default=1, help="hours of 1 Hz perpetual marks"
    )
    parser.add_argument(
        "--no-perps", action="store_true", help="spot candles only (the perpetuals' left out)"
    )
    args = parser.parse_args()
    perps = not args.no_perps

    now_ms = time.time_ns() // 1_000_000
    end_ms = now_ms - now_ms % 60_000
    results: dict[str, float | int] = {"symbols": args.symbols, "rate": args.rate}
    results.update(generate_only(args.symbols, args.rate, end_ms, perps))
    print(
        f"generate 24 h:       {results['generate_s']:6.2f} s wall, "
        f"{results['generate_cpu_s']:.2f} s CPU: {results['candles_1m']:,} 1m + "
        f"{results['candles_1s']:,} 1s candles (perpetuals: {results['perp_candles_1m']:,} 1m "
        f"+ {results['perp_candles_1s']:,} 1s), {results['mbytes']:.0f} MB of Arrow columns"
    )
    results.update(
        generate_and_store(args.symbols, args.rate, now_ms, args.perp_seconds_hours, perps)
    )
    print(
        f"generate + store:    {results['store_s']:6.2f} s wall, "
        f"{results['store_cpu_s']:.2f} s CPU (chdb inserts included)"
    )
    print(
        f"perpetuals' day:     {results['perps_store_s']:6.2f} s wall, "
        f"{results['perps_store_cpu_s']:.2f} s CPU: {results['perp_records']:,} records, "
        f"{results['perp_marks']:,} of them marks ({args.perp_seconds_hours} h at 1 Hz)"
    )
    print(f"restart, nothing due:{results['restart_s']:6.2f} s")
    results["live_trades_per_s"] = live_rate(args.symbols, args.rate, args.live_trades)
    print(
        f"live market:         {results['live_trades_per_s']:,.0f} trades/s generated with quotes "
        f"({args.rate / results['live_trades_per_s']:.1%} of a core at {args.rate:,.0f}/s)"
    )
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in results.items()}))


if __name__ == "__main__":
    main()
